"""OAuth accounts keep working past their access token's end: the gateway
refreshes the token before it ends (once, however many requests need it),
once after the upstream answers 401, and in the background for accounts no
request asked for. The mock upstream's token endpoint rotates refresh tokens
like Anthropic's: each works once."""

import concurrent.futures
import json
import secrets
import time

import pytest

from harness import messages_body


def oauth_tenant(gateway, expires_in, refresh=None, **fields):
    t = gateway.new_tenant(accounts=0)
    old = "sk-ant-oat01-old-" + secrets.token_hex(12)
    refresh = refresh or "sk-ant-ort01-" + secrets.token_hex(12)
    account = gateway.create_account([t.group["id"]], type="oauth", credential=old,
                                     refresh_token=refresh,
                                     expires_at=int(time.time()) + expires_in, **fields)
    t.account, t.old, t.refresh = account, old, refresh
    return t


def bearer_tokens(gateway):
    return [r["headers"].get("authorization", "")[7:] for r in gateway.mock_requests()]


def token_calls(gateway):
    return gateway.mock.token_calls()


@pytest.mark.parametrize("ends_in", [60, -600], ids=["ending", "expired"])
def test_token_ending_soon_is_refreshed_once_for_many_requests(gateway, ends_in):
    t = oauth_tenant(gateway, ends_in, concurrency=20)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(
            lambda i: gateway.post_messages(messages_body("q%d" % i), key=t.api_key,
                                            headers={"x-claude-code-session-id": "s%d" % i}),
            range(20)))
    assert [r[0] for r in results] == [200] * 20, [r[2] for r in results if r[0] != 200][:2]
    calls = token_calls(gateway)
    assert len(calls) == 1, calls
    grant = json.loads(calls[0]["body"])
    assert grant == {"grant_type": "refresh_token", "refresh_token": t.refresh,
                     "client_id": "s2a-test-client"}
    used = bearer_tokens(gateway)
    new = set(u for u in used if u != t.old)
    # a token still valid serves whoever comes while it is being replaced (the
    # background refresher may be the one replacing it): all of them, maybe
    assert len(used) == 20 and len(new) <= 1
    if ends_in < 0:
        assert t.old not in used  # an ended token waits for the new one
    deadline = time.monotonic() + 10
    while True:  # the refresh is saved once the endpoint answered
        account = gateway.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])
        if t.old[-4:] not in account["credential"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert account["refresh_token_set"] is True
    assert abs(account["expires_at"] - (time.time() + 28800)) < 60
    assert t.old[-4:] not in account["credential"]
    gateway.mock_clear()
    status, _, raw = gateway.post_messages(messages_body("after"), key=t.api_key)
    assert status == 200, raw
    [after] = bearer_tokens(gateway)
    assert after.startswith("sk-ant-oat01-mock-") and new <= {after}
    assert len(gateway.wait_usage({"key_id": t.key["id"]}, count=21)) == 21
    # later requests use the saved token without calling the endpoint again
    gateway.mock_clear()
    assert gateway.post_messages(messages_body("later"), key=t.api_key)[0] == 200
    assert bearer_tokens(gateway) == [after]
    assert token_calls(gateway) == []
    # no token of any kind reaches the log
    log = gateway.error_log(gateway.test_offset)
    assert t.refresh not in log and t.old not in log and after not in log


def test_401_refreshes_once_and_the_account_answers(gateway):
    gateway.expect_error(r"S2A0207")
    # one place only: the retry on the same account must not wait for itself
    t = oauth_tenant(gateway, 8 * 3600, concurrency=1)
    status, _, raw = gateway.post_messages(
        messages_body(mock={"status_for": {t.old: 401}}), key=t.api_key)
    assert status == 200, raw
    used = bearer_tokens(gateway)
    assert used[0] == t.old and used[1].startswith("sk-ant-oat01-mock-")
    assert len(token_calls(gateway)) == 1
    [row] = gateway.wait_usage({"key_id": t.key["id"]})
    assert row["attempt"] == 2 and row["account_id"] == t.account["id"]
    account = gateway.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])
    assert account["status"] == "active" and not account["state"]["error"]


def test_refused_refresh_puts_the_account_in_error(gateway):
    gateway.expect_error(r"S2A0502|S2A0205")
    t = oauth_tenant(gateway, 8 * 3600, refresh="not-a-refresh-token")
    status, _, raw = gateway.post_messages(
        messages_body(mock={"status_for": {t.old: 401}}), key=t.api_key)
    assert status == 502, raw
    assert json.loads(raw)["error"]["type"] == "api_error"
    assert len(token_calls(gateway)) == 1  # tried once, not again per request
    account = gateway.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])
    assert account["status"] == "error"
    assert "S2A0502" in gateway.error_log(gateway.test_offset)
    assert "invalid_grant" in gateway.error_log(gateway.test_offset)


def test_background_refresh_without_requests(gateway):
    t = oauth_tenant(gateway, 120)
    deadline = time.monotonic() + 10
    while not token_calls(gateway) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(token_calls(gateway)) == 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        account = gateway.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])
        if account["expires_at"] > time.time() + 3600:
            break
        time.sleep(0.2)
    assert account["expires_at"] > time.time() + 3600
    time.sleep(1.5)  # the watchdog runs every second here: it does not refresh it again
    assert len(token_calls(gateway)) == 1
    assert gateway.post_messages(messages_body(), key=t.api_key)[0] == 200
    assert bearer_tokens(gateway)[0].startswith("sk-ant-oat01-mock-")


def test_oauth_fields_are_validated(gateway, tenant):
    for fields, word in (({"refresh_token": ""}, "refresh_token"),
                         ({"expires_at": -1}, "expires_at"),
                         ({"expires_at": "soon"}, "expires_at")):
        status, body = gateway.admin("PATCH", "/admin/accounts/%d" % tenant.account["id"],
                                     fields)
        assert status == 400 and word in body["error"]["message"], body
    account = gateway.admin_ok("GET", "/admin/accounts/%d" % tenant.account["id"])
    assert account["refresh_token_set"] is False and account["expires_at"] == 0
    assert "refresh_token" not in account


def test_endpoint_down_is_not_asked_by_every_request(gateway):
    gateway.expect_error(r"S2A0501")
    t = oauth_tenant(gateway, 120, refresh="sk-ant-ort01-unavailable-" + secrets.token_hex(4))
    for i in range(5):
        status, _, raw = gateway.post_messages(messages_body("q%d" % i), key=t.api_key)
        assert status == 200, raw  # the old token still works
    time.sleep(1.5)  # the background refresher looked too
    assert len(token_calls(gateway)) == 1  # then 30 s of rest
    assert bearer_tokens(gateway) == [t.old] * 5
    account = gateway.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])
    assert account["status"] == "active"
    assert "temporarily_unavailable" in gateway.error_log(gateway.test_offset)
    # out of the background refresher's way for the tests after this one
    gateway.admin_ok("PATCH", "/admin/accounts/%d" % t.account["id"], {"status": "disabled"})


def test_refused_refresh_takes_the_account_out(gateway):
    gateway.expect_error(r"S2A0502")
    t = oauth_tenant(gateway, 120, refresh="not-a-refresh-token")
    # the token that still works serves the request that found it ending
    status, _, raw = gateway.post_messages(messages_body("first"), key=t.api_key)
    assert status == 200, raw
    account = gateway.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])
    assert account["status"] == "error"
    assert account["error_message"].startswith("token refresh refused: invalid_grant")
    assert account["state"]["error"] is True
    status, _, raw = gateway.post_messages(messages_body("second"), key=t.api_key)
    assert status == 503, raw
    assert len(token_calls(gateway)) == 1
