"""POST /v1/messages through the gateway: what the upstream receives, what the
client gets back, and what is billed."""

import hashlib
import hmac
import http.client
import json
import socket
import time

import pytest

import harness
from harness import messages_body

SONNET = "claude-sonnet-4-20250514"
HAIKU = "claude-3-5-haiku-20241022"
# nano-USD per token, from tests/integration/prices.json
SONNET_PRICE = {"in": 3000, "out": 15000, "cw5m": 3750, "cw1h": 6000, "cr": 300}
HAIKU_PRICE = {"in": 800, "out": 4000}


def error_of(raw):
    body = json.loads(raw)
    assert body["type"] == "error", body
    return body["error"]["type"], body["error"]["message"]


def balance(gateway, user_id):
    return gateway.admin_ok("GET", "/admin/users/%d" % user_id)["balance_nanousd"]


def no_rows(gateway, key_id, settle=0.5):
    """No usage row appears for the key (waits a little for the writer)."""
    time.sleep(settle)
    rows = gateway.admin_ok("GET", "/admin/usage?key_id=%d" % key_id)["data"]
    assert rows == []


# ---- the credential swap and the header allow-list ----

def test_plain_request_swaps_credential_and_filters_headers(gateway, tenant):
    status, headers, raw = gateway.post_messages(
        messages_body("Hi"), key=tenant.api_key,
        headers={"anthropic-beta": "prompt-caching-2024-07-31", "user-agent": "claude-cli/2.1.3",
                 "x-stainless-lang": "js", "x-app": "cli", "cookie": "session=secret",
                 "x-forwarded-for": "10.1.2.3", "x-custom-tracking": "abc",
                 "accept-encoding": "gzip, br"})
    assert status == 200, raw
    answer = json.loads(raw)
    assert answer["type"] == "message" and answer["model"] == SONNET
    assert "anthropic-organization-id" not in headers
    assert not [h for h in headers if h.startswith("anthropic-ratelimit")]
    assert headers.get("x-sub2api-request-id", "").startswith("req_")

    [sent] = gateway.mock_requests()
    h = sent["headers"]
    assert h["x-api-key"] == tenant.credential
    assert "authorization" not in h
    assert tenant.api_key not in json.dumps(sent)
    for dropped in ("cookie", "x-forwarded-for", "x-custom-tracking", "accept-encoding",
                    "x-forwarded-host", "x-forwarded-server", "via"):
        assert dropped not in h, dropped
    assert h["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert h["user-agent"] == "claude-cli/2.1.3"
    assert h["x-stainless-lang"] == "js" and h["x-app"] == "cli"
    assert h["anthropic-version"] == harness.ANTHROPIC_VERSION
    assert sent["path"] == "/v1/messages"
    forwarded = json.loads(sent["body"])
    assert forwarded.pop("metadata")["user_id"].startswith("user_")
    assert forwarded == messages_body("Hi")


def test_bearer_key_and_query_string_are_accepted(gateway, tenant):
    status, _, raw = gateway.post_messages(
        messages_body("Hi"), key=None, path="/v1/messages?beta=true",
        headers={"Authorization": "Bearer " + tenant.api_key})
    assert status == 200, raw
    [sent] = gateway.mock_requests()
    assert sent["path"] == "/v1/messages?beta=true"
    assert sent["headers"]["x-api-key"] == tenant.credential


def pseudonym(gateway, user_id, account_id):
    [(secret,)] = gateway.db_query("SELECT v FROM s2a_meta WHERE k = 'user_id_secret'")
    return hmac.new(secret.encode(), b"s2a-user:%d:account:%d" % (user_id, account_id),
                    hashlib.sha256).hexdigest()


def test_body_is_forwarded_byte_for_byte_but_the_user_id(gateway, tenant):
    raw_body = ('{ "model" : "%s", "max_tokens":16,\n "messages":[{"role":"user",'
                '"content":"caf\\u00e9 \\"quoted\\" \\\\ end"}], "metadata":{"user_id":"u1"} }'
                % SONNET).encode()
    status, _, raw = gateway.post_messages(raw_body, key=tenant.api_key)
    assert status == 200, raw
    ps = pseudonym(gateway, tenant.user["id"], tenant.account["id"])
    assert gateway.mock_requests()[0]["body"].encode() == raw_body.replace(
        b'"u1"', b'"user_%s"' % ps.encode())


@pytest.mark.parametrize("metadata,expect", [
    (None, "user_{ps}"),
    ({}, "user_{ps}"),
    ({"other": 1}, "user_{ps}"),
    ({"user_id": "alice@example.com"}, "user_{ps}"),
    ({"user_id": "user_" + "ab" * 32 + "_account_1234-abcd_session_5678-ef90"},
     "user_{ps}_account__session_5678-ef90"),
    ({"user_id": json.dumps({"device_id": "dev-1", "account_uuid": "acc-2",
                             "session_id": "5f0c8e6e-1b2a-4c1e-9a8e-0d6f2b3c4d5e"})},
     '{{"device_id":"{ps}","session_id":"5f0c8e6e-1b2a-4c1e-9a8e-0d6f2b3c4d5e"}}'),
])
def test_user_id_becomes_a_pseudonym_keeping_the_session(gateway, tenant, metadata, expect):
    body = messages_body()
    if metadata is not None:
        body["metadata"] = metadata
    status, _, raw = gateway.post_messages(body, key=tenant.api_key)
    assert status == 200, raw
    sent = json.loads(gateway.mock_requests()[0]["body"])
    ps = pseudonym(gateway, tenant.user["id"], tenant.account["id"])
    assert sent["metadata"]["user_id"] == expect.format(ps=ps)
    for k, v in (metadata or {}).items():
        if k != "user_id":
            assert sent["metadata"][k] == v
    for secret in ("alice", "dev-1", "acc-2", "ab" * 32):
        assert secret not in sent["metadata"]["user_id"]
    assert sent["messages"] == body["messages"]


def test_pseudonyms_differ_per_user_and_per_account(gateway):
    t1 = gateway.new_tenant(accounts=2)
    t2 = gateway.create_key(gateway.create_user()["id"], t1.group["id"])
    seen = {}
    for key, who in ((t1.api_key, "u1"), (t2["key"], "u2")) * 2:
        for _ in range(2):  # the two accounts take turns
            gateway.mock_clear()
            # a new conversation each time, so no session binds it to an account
            gateway.post_messages(messages_body(), key=key,
                                  headers={"x-claude-code-session-id": gateway.unique("s")})
            sent = gateway.mock_requests()[0]
            seen.setdefault((who, sent["headers"]["x-api-key"]), set()).add(
                json.loads(sent["body"])["metadata"]["user_id"])
    # one stable value per (user, account), all different from each other
    assert all(len(v) == 1 for v in seen.values())
    values = [next(iter(v)) for v in seen.values()]
    assert len(set(values)) == len(values) == 4


# ---- billing ----

def test_plain_request_is_billed_exactly(gateway, tenant):
    start = balance(gateway, tenant.user["id"])
    status, _, raw = gateway.post_messages(
        messages_body(mock={"usage": {"input_tokens": 1234, "output_tokens": 567}}),
        key=tenant.api_key)
    assert status == 200, raw
    [row] = gateway.wait_usage({"key_id": tenant.key["id"]})
    cost_in, cost_out = 1234 * SONNET_PRICE["in"], 567 * SONNET_PRICE["out"]
    assert (row["input_tokens"], row["output_tokens"]) == (1234, 567)
    assert row["input_cost_nanousd"] == cost_in
    assert row["output_cost_nanousd"] == cost_out
    assert row["total_cost_nanousd"] == row["actual_cost_nanousd"] == cost_in + cost_out
    assert row["user_id"] == tenant.user["id"] and row["account_id"] == tenant.account["id"]
    assert row["group_id"] == tenant.group["id"]
    assert row["stream"] is False and row["status"] == 200 and row["outcome"] == "ok"
    assert row["request_id"].startswith("req_")
    assert balance(gateway, tenant.user["id"]) == start - (cost_in + cost_out)


def test_stream_with_cache_tokens_and_multiplier_is_billed_exactly(gateway):
    t = gateway.new_tenant(balance_usd="5", rate_multiplier="1.5")
    usage = {"input_tokens": 100, "output_tokens": 50, "cache_creation_input_tokens": 2000,
             "cache_read_input_tokens": 3000,
             "cache_creation": {"ephemeral_5m_input_tokens": 1000,
                                "ephemeral_1h_input_tokens": 1000}}
    res = gateway.stream_messages(messages_body(mock={"usage": usage, "events": 5}),
                                  key=t.api_key)
    assert res.status == 200, res.raw
    names = [n for n, _ in res.events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert names.count("message_start") == 1
    [row] = gateway.wait_usage({"key_id": t.key["id"]})
    cw = 1000 * SONNET_PRICE["cw5m"] + 1000 * SONNET_PRICE["cw1h"]
    total = 100 * SONNET_PRICE["in"] + 50 * SONNET_PRICE["out"] + cw + 3000 * SONNET_PRICE["cr"]
    assert row["cache_creation_tokens"] == 2000 and row["cache_creation_1h_tokens"] == 1000
    assert row["cache_read_tokens"] == 3000 and row["output_tokens"] == 50
    assert row["cache_creation_cost_nanousd"] == cw
    assert row["total_cost_nanousd"] == total
    assert row["actual_cost_nanousd"] == total * 3 // 2
    assert row["rate_multiplier_ppm"] == 1500000
    assert row["stream"] is True and row["outcome"] == "ok"
    assert balance(gateway, t.user["id"]) == 5 * 10**9 - total * 3 // 2


def test_stream_events_are_not_held_back(gateway, tenant):
    res = gateway.stream_messages(messages_body(mock={"events": 4, "event_delay_ms": 300}),
                                  key=tenant.api_key)
    assert res.status == 200
    assert harness.sse_text(res.events)
    # the answer arrives in pieces spread over the upstream's pauses, not at once
    assert len(res.chunks) >= 4
    assert res.chunks[-1][0] - res.chunks[0][0] >= 1.0


@pytest.mark.parametrize("pause_ms", [0, 300])
def test_plain_answer_goes_with_its_length(gateway, tenant, pause_ms):
    """A JSON answer is held to its end and goes with a Content-Length, also
    when the upstream's body came after its headers (mod_proxy flushes
    between them)."""
    status, headers, raw = gateway.post_messages(
        messages_body(mock={"body_delay_ms": pause_ms}), key=tenant.api_key)
    assert status == 200, raw
    assert headers.get("content-length") == str(len(raw)), headers
    assert "transfer-encoding" not in headers
    assert json.loads(raw)["type"] == "message"


def test_upstream_cut_mid_stream_bills_what_was_read(gateway, tenant):
    gateway.expect_error(r"AH01102|AH01110|proxy:error|proxy_http:error")
    # the client sees its stream end without the closing chunk: an error, not a
    # short answer that looks complete
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    conn.request("POST", "/v1/messages",
                 body=json.dumps(messages_body(stream=True,
                                               mock={"events": 6, "cut_after": 6,
                                                     "text": "x" * 120})),
                 headers={"x-api-key": tenant.api_key, "content-type": "application/json",
                          "anthropic-version": harness.ANTHROPIC_VERSION})
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead) as cut:
        resp.read()
    conn.close()
    events = harness.parse_sse(cut.value.partial)
    assert events[0][0] == "message_start"
    assert events[-1][0] == "error" and events[-1][1]["error"]["type"] == "api_error"
    assert "message_stop" not in [n for n, _ in events]
    [row] = gateway.wait_usage({"key_id": tenant.key["id"]})
    assert row["outcome"] == "upstream_cut"
    assert row["input_tokens"] == 10
    # three of six 20-character pieces went out: 60 bytes at 4 per token
    assert row["output_tokens"] == 15


def test_client_abort_mid_stream_is_marked(gateway, tenant):
    # without the drain (test_streams_left_early.py) the estimate is what counts
    gateway.reload("Sub2apiDrainTimeout 0")
    res = gateway.stream_messages(
        messages_body(mock={"events": 8, "event_delay_ms": 200, "text": "y" * 80,
                            "usage": {"input_tokens": 10, "output_tokens": 500}}),
        key=tenant.api_key, abort_after_events=5)
    assert res.status == 200
    [row] = gateway.wait_usage({"key_id": tenant.key["id"]}, timeout=15)
    assert row["outcome"] == "client_aborted"
    assert row["input_tokens"] == 10
    # billed for the 10-character pieces it was sent (two read, one or two more in
    # flight when it left), not for the 500 tokens the whole answer would have had
    assert 5 <= row["output_tokens"] <= 10, row
    gateway.reload("")


# ---- model mapping ----

@pytest.mark.parametrize("stream", [False, True])
def test_model_mapping_both_ways(gateway, stream):
    t = gateway.new_tenant(model_mapping={SONNET: HAIKU})
    body = messages_body(mock={"usage": {"input_tokens": 1000, "output_tokens": 100}})
    if stream:
        res = gateway.stream_messages(body, key=t.api_key)
        status, raw = res.status, res.raw
        start = [d for n, d in res.events if n == "message_start"][0]
        assert start["message"]["model"] == SONNET
        assert HAIKU.encode() not in raw
    else:
        status, headers, raw = gateway.post_messages(body, key=t.api_key)
        assert json.loads(raw)["model"] == SONNET
        assert int(headers.get("content-length", len(raw))) == len(raw)
    assert status == 200, raw
    assert json.loads(gateway.mock_requests()[0]["body"])["model"] == HAIKU
    [row] = gateway.wait_usage({"key_id": t.key["id"]})
    assert row["model"] == SONNET and row["upstream_model"] == HAIKU
    assert row["total_cost_nanousd"] == 1000 * HAIKU_PRICE["in"] + 100 * HAIKU_PRICE["out"]


def test_model_outside_mapping_is_not_served(gateway):
    t = gateway.new_tenant(model_mapping={HAIKU: HAIKU})
    status, _, raw = gateway.post_messages(messages_body(), key=t.api_key)
    assert status == 503
    assert error_of(raw)[0] == "overloaded_error"
    assert gateway.mock_requests() == []


def test_model_without_price_is_rejected(gateway, tenant):
    status, _, raw = gateway.post_messages(messages_body(model="claude-unpriced-1"),
                                           key=tenant.api_key)
    assert status == 400
    kind, msg = error_of(raw)
    assert kind == "invalid_request_error" and "claude-unpriced-1" in msg
    assert gateway.mock_requests() == []


# ---- the gateway's own errors ----

def test_missing_unknown_disabled_and_expired_keys(gateway, tenant):
    cases = [(None, "x-api-key"), ("sk-s2a-" + "0" * 48, "invalid")]
    for key, word in cases:
        status, headers, raw = gateway.post_messages(messages_body(), key=key)
        assert status == 401
        assert headers["content-type"].startswith("application/json")
        kind, msg = error_of(raw)
        assert kind == "authentication_error" and word in msg

    expired = gateway.create_key(tenant.user["id"], tenant.group["id"],
                                 expires_at=int(time.time()) - 10)
    status, _, raw = gateway.post_messages(messages_body(), key=expired["key"])
    assert status == 401 and "expired" in error_of(raw)[1]

    gateway.admin_ok("PATCH", "/admin/keys/%d" % tenant.key["id"], {"status": "disabled"})
    status, _, raw = gateway.post_messages(messages_body(), key=tenant.api_key)
    assert status == 401 and error_of(raw)[0] == "authentication_error"

    gateway.admin_ok("PATCH", "/admin/keys/%d" % tenant.key["id"], {"status": "active"})
    gateway.admin_ok("PATCH", "/admin/users/%d" % tenant.user["id"], {"status": "disabled"})
    status, _, raw = gateway.post_messages(messages_body(), key=tenant.api_key)
    assert status == 401
    assert gateway.mock_requests() == []


def test_empty_balance_gets_402(gateway):
    t = gateway.new_tenant(balance_usd="0")
    status, _, raw = gateway.post_messages(messages_body(), key=t.api_key)
    assert status == 402
    assert error_of(raw)[0] == "billing_error"
    assert gateway.mock_requests() == []
    gateway.admin_ok("PATCH", "/admin/users/%d" % t.user["id"], {"add_balance_usd": "0.5"})
    status, _, raw = gateway.post_messages(messages_body(), key=t.api_key)
    assert status == 200, raw


def test_balance_spent_to_zero_blocks_next_request(gateway):
    t = gateway.new_tenant()
    gateway.admin_ok("PATCH", "/admin/users/%d" % t.user["id"], {"balance_nanousd": 100000})
    status, _, _ = gateway.post_messages(messages_body(), key=t.api_key)
    assert status == 200
    gateway.wait_usage({"key_id": t.key["id"]})
    assert balance(gateway, t.user["id"]) == 100000 - 105000
    deadline = time.monotonic() + 5
    while True:
        status, _, raw = gateway.post_messages(messages_body(), key=t.api_key)
        if status == 402 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 402


BAD_BODIES = [
    (b'{"model": "%s", "messages": [' % SONNET.encode(), "not valid JSON"),
    (b'[1, 2]', "not valid JSON"),
    (b'', "not valid JSON"),
    (b'{"messages": []}', "model"),
    (b'{"model": 7, "messages": []}', "model"),
    (b'{"model": "", "messages": []}', "model"),
    (b'{"model": "%s"}' % SONNET.encode(), "messages"),
    (b'{"model": "%s", "messages": {}}' % SONNET.encode(), "messages"),
    (b'{"model": "%s", "messages": [], "stream": "yes"}' % SONNET.encode(), "stream"),
    (b'{"model": "%s", "messages": [], "metadata": "x"}' % SONNET.encode(), "metadata"),
    (b'{"model": "%s", "messages": []} trailing' % SONNET.encode(), "not valid JSON"),
]


@pytest.mark.parametrize("body,word", BAD_BODIES)
def test_bad_bodies_never_reach_the_upstream(gateway, tenant, body, word):
    status, headers, raw = gateway.post_messages(body, key=tenant.api_key)
    assert status == 400
    kind, msg = error_of(raw)
    assert kind == "invalid_request_error" and word in msg
    assert gateway.mock_requests() == []


def test_oversized_body_gets_413_without_being_read(gateway, tenant):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"model\":"
                  % (tenant.api_key.encode(), 64 * 1024 * 1024))
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert error_of(body)[0] == "request_too_large"
    assert gateway.mock_requests() == []


def test_unknown_path_and_wrong_method(gateway, tenant):
    status, _, raw = harness.http_request(gateway.port, "GET", "/v1/nothing-here",
                                          headers={"x-api-key": tenant.api_key})
    assert status == 404 and error_of(raw)[0] == "not_found_error"
    status, headers, raw = harness.http_request(gateway.port, "GET", "/v1/messages",
                                                headers={"x-api-key": tenant.api_key})
    assert status == 405 and error_of(raw)[0] == "invalid_request_error"
    assert "POST" in headers["allow"].split(",")


# ---- upstream errors ----

@pytest.mark.parametrize("upstream,client,kind", [
    (401, 502, "api_error"), (403, 502, "api_error"), (429, 429, "rate_limit_error"),
    (529, 503, "overloaded_error"), (500, 502, "api_error"), (503, 502, "api_error"),
])
def test_upstream_errors_are_mapped_and_not_leaked(gateway, upstream, client, kind):
    t = gateway.new_tenant()
    gateway.expect_error(r"S2A0205")
    status, headers, raw = gateway.post_messages(
        messages_body(mock={"status": upstream,
                            "headers": {"anthropic-ratelimit-unified-reset":
                                        str(int(time.time()) + 120)}}),
        key=t.api_key)
    assert status == client, raw
    assert error_of(raw)[0] == kind
    assert b"mock" not in raw.lower() and b"request_id" not in raw
    assert "anthropic-organization-id" not in headers
    if upstream == 429:
        assert 100 <= int(headers["retry-after"]) <= 125
    state = gateway.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])
    now = time.time()
    if upstream in (401, 403):
        assert state["status"] == "error" and str(upstream) in state["error_message"]
    elif upstream == 429:
        assert now + 100 < state["state"]["rate_limited_until"] <= now + 125
    elif upstream == 529:
        assert now + 500 < state["state"]["overloaded_until"] <= now + 610
    else:
        assert state["status"] == "active" and not state["state"]["error"]
    no_rows(gateway, t.key["id"], settle=0.3)


def new_conversation(gateway):
    """Headers of a request that starts a conversation of its own, so no
    session binds it to the account an earlier request used."""
    return {"x-claude-code-session-id": gateway.unique("conv")}


def test_cooling_account_is_skipped_until_cleared(gateway):
    t = gateway.new_tenant(accounts=0)
    first = gateway.create_account([t.group["id"]], priority=10)
    second = gateway.create_account([t.group["id"]], priority=20)
    cred1, cred2 = gateway.credentials[first["id"]], gateway.credentials[second["id"]]
    gateway.expect_error(r"S2A0207")
    # the first account answers 529: the request goes on to the second
    status, _, _ = gateway.post_messages(messages_body(mock={"status_for": {cred1: 529}}),
                                         key=t.api_key)
    assert status == 200
    assert [r["headers"]["x-api-key"] for r in gateway.mock_requests()] == [cred1, cred2]
    gateway.mock_clear()
    for _ in range(3):
        status, _, _ = gateway.post_messages(messages_body(), key=t.api_key,
                                             headers=new_conversation(gateway))
        assert status == 200
    assert {r["headers"]["x-api-key"] for r in gateway.mock_requests()} == {cred2}
    gateway.admin_ok("PATCH", "/admin/accounts/%d" % first["id"], {"status": "active"})
    gateway.mock_clear()
    status, _, _ = gateway.post_messages(messages_body(), key=t.api_key,
                                         headers=new_conversation(gateway))
    assert [r["headers"]["x-api-key"] for r in gateway.mock_requests()] == [cred1]


def test_account_in_error_recovers_when_reenabled(gateway):
    t = gateway.new_tenant()
    gateway.expect_error(r"S2A0205")
    status, _, _ = gateway.post_messages(messages_body(mock={"status": 401}), key=t.api_key)
    assert status == 502
    status, _, raw = gateway.post_messages(messages_body(), key=t.api_key)
    assert status == 503 and error_of(raw)[0] == "overloaded_error"
    gateway.admin_ok("PATCH", "/admin/accounts/%d" % t.account["id"], {"status": "active"})
    status, _, raw = gateway.post_messages(messages_body(), key=t.api_key)
    assert status == 200, raw


def test_upstream_400_is_passed_through(gateway, tenant):
    status, _, raw = gateway.post_messages(messages_body(mock={"status": 400}),
                                           key=tenant.api_key)
    assert status == 400
    assert error_of(raw)[0] == "invalid_request_error"
    state = gateway.admin_ok("GET", "/admin/accounts/%d" % tenant.account["id"])
    assert state["status"] == "active"
    no_rows(gateway, tenant.key["id"], settle=0.3)


def test_endpoint_outside_the_balancer_gets_json_503(gateway):
    t = gateway.new_tenant(endpoint="http://127.0.0.1:9")
    gateway.expect_error(r"S2A0203|AH01170")
    status, headers, raw = gateway.post_messages(messages_body(), key=t.api_key)
    assert status == 503
    assert headers["content-type"].startswith("application/json")
    assert error_of(raw)[0] == "overloaded_error"


# ---- account choice ----

def test_lower_priority_number_wins(gateway):
    t = gateway.new_tenant(accounts=0)
    low = gateway.create_account([t.group["id"]], priority=10)
    gateway.create_account([t.group["id"]], priority=50)
    for _ in range(4):
        status, _, _ = gateway.post_messages(messages_body(), key=t.api_key)
        assert status == 200
    assert {r["headers"]["x-api-key"] for r in gateway.mock_requests()} == {
        gateway.credentials[low["id"]]}


def test_equal_priority_accounts_take_turns(gateway):
    t = gateway.new_tenant(accounts=3)
    for _ in range(6):
        status, _, _ = gateway.post_messages(messages_body(), key=t.api_key,
                                             headers=new_conversation(gateway))
        assert status == 200
    used = [r["headers"]["x-api-key"] for r in gateway.mock_requests()]
    assert sorted(used) == sorted(t.credentials * 2)


def test_accounts_of_other_groups_are_not_used(gateway):
    a = gateway.new_tenant()
    b = gateway.new_tenant()
    gateway.post_messages(messages_body(), key=a.api_key)
    gateway.post_messages(messages_body(), key=b.api_key)
    used = [r["headers"]["x-api-key"] for r in gateway.mock_requests()]
    assert used == [a.credential, b.credential]


def test_second_upstream_endpoint_is_chosen_by_account(gateway):
    if len(gateway.mocks) < 2:
        pytest.skip("one mock upstream")
    t = gateway.new_tenant(endpoint=gateway.mocks[1].url)
    status, _, _ = gateway.post_messages(messages_body(), key=t.api_key)
    assert status == 200
    assert gateway.mock_requests(0) == []
    assert gateway.mock_requests(1)[0]["headers"]["x-api-key"] == t.credential


@pytest.mark.parametrize("account_type", ["oauth", "setup-token"])
def test_oauth_accounts_send_a_bearer_token_and_the_oauth_beta(gateway, account_type):
    t = gateway.new_tenant(type=account_type)
    status, _, raw = gateway.post_messages(
        messages_body(), key=t.api_key,
        headers={"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"})
    assert status == 200, raw
    h = gateway.mock_requests()[0]["headers"]
    assert h["authorization"] == "Bearer " + t.credential
    assert "x-api-key" not in h
    assert h["anthropic-beta"] == ("claude-code-20250219,oauth-2025-04-20,"
                                   "interleaved-thinking-2025-05-14")
    gateway.mock_clear()
    gateway.post_messages(messages_body(model=HAIKU), key=t.api_key,
                          headers={"x-claude-code-session-id": gateway.unique("s")})
    assert gateway.mock_requests()[0]["headers"]["anthropic-beta"] == (
        "oauth-2025-04-20,interleaved-thinking-2025-05-14")


def test_apikey_accounts_keep_the_client_beta(gateway, tenant):
    gateway.post_messages(messages_body(), key=tenant.api_key)
    assert "anthropic-beta" not in gateway.mock_requests()[0]["headers"]


def test_account_fixed_headers_go_upstream(gateway):
    t = gateway.new_tenant(headers={"x-team": "blue", "anthropic-beta": "fixed-beta-1"})
    # their values are shown masked, like the credential
    assert t.account["headers"] == {"x-team": "****", "anthropic-beta": "****"}
    status, _, _ = gateway.post_messages(messages_body(), key=t.api_key,
                                         headers={"anthropic-beta": "client-beta",
                                                  "x-team": "red"})
    assert status == 200
    sent = gateway.mock_requests()[0]["headers"]
    assert sent["x-team"] == "blue" and sent["anthropic-beta"] == "fixed-beta-1"
    assert sent["x-api-key"] == t.credential
    for headers, word in (({"Authorization": "Bearer x"}, "set by the gateway"),
                          ({"x-api-key": "k"}, "set by the gateway"),
                          ({"bad name": "v"}, "not a header name"),
                          ({"x-ok": "a\r\nInjected: 1"}, "control characters"),
                          ({"x-ok": 5}, "strings"),
                          (["x"], "an object")):
        status, body = gateway.admin("PATCH", "/admin/accounts/%d" % t.account["id"],
                                     {"headers": headers})
        assert status == 400 and word in body["error"]["message"], body
    gateway.admin_ok("PATCH", "/admin/accounts/%d" % t.account["id"], {"headers": {}})
    gateway.mock_clear()
    assert gateway.post_messages(messages_body(), key=t.api_key)[0] == 200
    assert "x-team" not in gateway.mock_requests()[0]["headers"]
