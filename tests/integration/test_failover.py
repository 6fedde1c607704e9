"""Failover: an upstream failure before the client got a byte sends the
request to another account; the client sees one answer, billed once."""

import json
import time

import pytest

from harness import messages_body


def two_accounts(gateway, **fields):
    """A tenant whose accounts are always tried in the same order."""
    t = gateway.new_tenant(accounts=0, **fields)
    first = gateway.create_account([t.group["id"]], priority=10)
    second = gateway.create_account([t.group["id"]], priority=20)
    t.first, t.second = first, second
    t.first_cred = gateway.credentials[first["id"]]
    t.second_cred = gateway.credentials[second["id"]]
    return t


def upstream_keys(gateway, which=0):
    return [r["headers"].get("x-api-key") for r in gateway.mock_requests(which)]


@pytest.mark.parametrize("failure", [401, 403, 429, 500, 502, 503, 529])
@pytest.mark.parametrize("stream", [False, True])
def test_failed_account_is_replaced_and_billed_once(gateway, failure, stream):
    t = two_accounts(gateway)
    gateway.expect_error(r"S2A0207|S2A0204")
    body = messages_body(stream=stream, mock={
        "status_for": {t.first_cred: failure},
        "usage": {"input_tokens": 100, "output_tokens": 20}})
    if stream:
        res = gateway.stream_messages(body, key=t.api_key)
        status, headers = res.status, res.headers
        assert [n for n, _ in res.events][-1] == "message_stop"
        assert [n for n, _ in res.events].count("message_start") == 1
    else:
        status, headers, raw = gateway.post_messages(body, key=t.api_key)
        assert json.loads(raw)["type"] == "message"
    assert status == 200
    assert upstream_keys(gateway) == [t.first_cred, t.second_cred]
    # the same body went to both, each with its own pseudonym
    sent = [json.loads(r["body"]) for r in gateway.mock_requests()]
    assert sent[0]["messages"] == sent[1]["messages"]
    assert sent[0]["metadata"]["user_id"] != sent[1]["metadata"]["user_id"]
    [row] = gateway.wait_usage({"key_id": t.key["id"]})
    assert row["account_id"] == t.second["id"] and row["attempt"] == 2
    assert row["input_tokens"] == 100 and row["output_tokens"] == 20
    time.sleep(0.3)
    assert len(gateway.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"]) == 1
    state = gateway.admin_ok("GET", "/admin/accounts/%d" % t.first["id"])
    if failure in (401, 403):
        assert state["status"] == "error"
    elif failure == 429:
        assert state["state"]["rate_limited_until"] > time.time()
    elif failure == 529:
        assert state["state"]["overloaded_until"] > time.time()
    assert log_names_both(gateway, t)


def log_names_both(gateway, t):
    log = gateway.error_log(gateway.test_offset)
    return ("account %d" % t.first["id"] in log and "account %d" % t.second["id"] in log)


def test_upstream_400_does_not_switch(gateway):
    t = two_accounts(gateway)
    status, _, raw = gateway.post_messages(
        messages_body(mock={"status_for": {t.first_cred: 400}}), key=t.api_key)
    assert status == 400
    assert upstream_keys(gateway) == [t.first_cred]


def test_switches_are_bounded_and_the_last_error_is_shown(gateway):
    t = gateway.new_tenant(accounts=6)
    gateway.expect_error(r"S2A0207|S2A0205")
    status, _, raw = gateway.post_messages(messages_body(mock={"status": 529}), key=t.api_key)
    assert status == 503
    assert json.loads(raw)["error"]["type"] == "overloaded_error"
    keys = upstream_keys(gateway)
    assert len(keys) == 4 and len(set(keys)) == 4  # first try + 3 switches, no account twice
    time.sleep(0.3)
    assert gateway.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"] == []


def test_no_other_account_means_the_error_is_shown(gateway):
    t = gateway.new_tenant(accounts=1)
    gateway.expect_error(r"S2A0205")
    status, _, raw = gateway.post_messages(messages_body(mock={"status": 500}), key=t.api_key)
    assert status == 502
    assert len(upstream_keys(gateway)) == 1


def test_dead_endpoint_is_replaced(gateway):
    t = gateway.new_tenant(accounts=0)
    dead = gateway.create_account([t.group["id"]], priority=10,
                                  endpoint=gateway.httpd.dead_upstream)
    live = gateway.create_account([t.group["id"]], priority=20)
    gateway.expect_error(r"S2A0207|AH00957|AH00959|AH01114|AH01170|AH02805|proxy:error|"
                         r"proxy_http:error|Connection refused")
    for _ in range(2):
        status, _, raw = gateway.post_messages(messages_body(), key=t.api_key)
        assert status == 200, raw
    assert upstream_keys(gateway) == [gateway.credentials[live["id"]]] * 2
    rows = gateway.wait_usage({"key_id": t.key["id"]}, count=2)
    assert {r["account_id"] for r in rows} == {live["id"]}
    assert dead["id"] not in {r["account_id"] for r in rows}


def test_failover_keeps_the_model_mapping_of_each_account(gateway):
    t = gateway.new_tenant(accounts=0)
    first = gateway.create_account([t.group["id"]], priority=10)
    second = gateway.create_account(
        [t.group["id"]], priority=20,
        model_mapping={"claude-sonnet-4-20250514": "claude-3-5-haiku-20241022"})
    gateway.expect_error(r"S2A0207")
    status, _, raw = gateway.post_messages(
        messages_body(mock={"status_for": {gateway.credentials[first["id"]]: 529}}),
        key=t.api_key)
    assert status == 200
    assert json.loads(raw)["model"] == "claude-sonnet-4-20250514"
    models = [json.loads(r["body"])["model"] for r in gateway.mock_requests()]
    assert models == ["claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"]
    [row] = gateway.wait_usage({"key_id": t.key["id"]})
    assert row["upstream_model"] == "claude-3-5-haiku-20241022"
    assert row["account_id"] == second["id"]


def test_custom_error_codes(gateway):
    t = gateway.new_tenant(accounts=0)
    first = gateway.create_account([t.group["id"]], priority=10, custom_error_codes=[429])
    second = gateway.create_account([t.group["id"]], priority=20)
    assert first["custom_error_codes"] == [429] and second["custom_error_codes"] is None
    cred1 = gateway.credentials[first["id"]]
    gateway.expect_error(r"S2A0208|S2A0207")
    # outside the list: a plain 500, no state change, no other account tried
    status, _, raw = gateway.post_messages(
        messages_body(mock={"status_for": {cred1: 529}}), key=t.api_key)
    assert status == 500
    assert json.loads(raw)["error"] == {"type": "api_error", "message": "Upstream gateway error"}
    assert upstream_keys(gateway) == [cred1]
    state = gateway.admin_ok("GET", "/admin/accounts/%d" % first["id"])["state"]
    assert state["overloaded_until"] == 0
    # in the list: handled as usual, with failover
    gateway.mock_clear()
    status, _, _ = gateway.post_messages(
        messages_body("again", mock={"status_for": {cred1: 429}}), key=t.api_key)
    assert status == 200
    assert upstream_keys(gateway) == [cred1, gateway.credentials[second["id"]]]
    assert gateway.admin_ok("GET", "/admin/accounts/%d" % first["id"])["state"][
        "rate_limited_until"] > time.time()
    # null switches the list off
    acct = gateway.admin_ok("PATCH", "/admin/accounts/%d" % first["id"],
                            {"custom_error_codes": None})
    assert acct["custom_error_codes"] is None
    status, body = gateway.admin("PATCH", "/admin/accounts/%d" % first["id"],
                                 {"custom_error_codes": [200]})
    assert status == 400


def test_no_switch_once_the_upstream_may_have_the_request(gateway):
    """A connection that breaks after the request was sent may leave the
    upstream running it: the request goes to no other account (it would run
    twice) unless Sub2apiFailoverUncertain allows it."""
    t = two_accounts(gateway)
    gateway.expect_error(r"S2A0212|S2A0207|AH01102|AH00898|proxy_http:error|proxy:error")
    body = messages_body(mock={"hang_up_for": [t.first_cred]})
    status, _, raw = gateway.post_messages(body, key=t.api_key)
    assert status == 502, raw
    assert json.loads(raw)["error"]["type"] == "api_error"
    assert upstream_keys(gateway) == [t.first_cred]
    gateway.reload("Sub2apiFailoverUncertain On")
    try:
        gateway.mock_clear()
        status, _, raw = gateway.post_messages(body, key=t.api_key)
        assert status == 200, raw
        assert upstream_keys(gateway) == [t.first_cred, t.second_cred]
    finally:
        gateway.reload("")


def test_the_upstreams_words_about_the_account(gateway):
    """A 400 saying the organization is disabled is about the account: it
    fails over and the account is out, and the client never sees it; a 403
    about one model fails over and leaves the account in service."""
    t = two_accounts(gateway)
    gateway.expect_error(r"S2A0207")
    disabled = {"status_for": {t.first_cred: 400},
                "error_message": "This organization has been disabled."}
    status, _, raw = gateway.post_messages(messages_body(mock=disabled), key=t.api_key)
    assert status == 200, raw
    assert b"organization" not in raw
    assert upstream_keys(gateway) == [t.first_cred, t.second_cred]
    assert gateway.admin_ok("GET", "/admin/accounts/%d" % t.first["id"])["status"] == "error"

    t = two_accounts(gateway)
    gateway.mock_clear()
    one_model = {"status_for": {t.first_cred: 403}, "error_message":
                 "Your organization does not have access to model claude-sonnet-4-20250514"}
    status, _, raw = gateway.post_messages(messages_body(mock=one_model), key=t.api_key)
    assert status == 200, raw
    assert upstream_keys(gateway) == [t.first_cred, t.second_cred]
    assert gateway.admin_ok("GET", "/admin/accounts/%d" % t.first["id"])["status"] == "active"
    # a 400 about the request is the client's, word for word
    gateway.mock_clear()
    status, _, raw = gateway.post_messages(messages_body(mock={
        "status": 400, "error_message": "max_tokens: Field required"}), key=t.api_key)
    assert status == 400 and json.loads(raw)["error"]["message"] == "max_tokens: Field required"
    assert upstream_keys(gateway) == [t.first_cred]
