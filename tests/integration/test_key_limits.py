"""A key's own limits, set by its operator: the models it may use (403
before anything reaches the upstream) and what it may spend, in all and per
day, week or month (402), held per request while in flight as balances
are."""

import concurrent.futures
import json
import time

import harness
from harness import messages_body

SONNET = "claude-sonnet-4-20250514"
HAIKU = "claude-3-5-haiku-20241022"
USAGE = {"input_tokens": 1000, "output_tokens": 100}
COST = 4_500_000  # 1,000 x 3,000 + 100 x 15,000 nano-USD at multiplier 1


def error_of(raw):
    body = json.loads(raw)
    return body["error"]["type"], body["error"]["message"]


def test_a_key_uses_only_its_models(gateway):
    gw = gateway
    t = gw.new_tenant()
    key = gw.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"],
                      {"models": ["claude-sonnet-*", "claude-3-opus-20240229"]})
    assert key["models"] == ["claude-sonnet-*", "claude-3-opus-20240229"]
    gw.mock_clear()
    status, _, raw = gw.post_messages(messages_body(model=HAIKU), key=t.api_key)
    assert status == 403, raw
    assert error_of(raw) == ("permission_error", "This API key may not use model %s" % HAIKU)
    status, _, raw = gw.post_messages(messages_body(model=HAIKU), key=t.api_key,
                                      path="/v1/messages/count_tokens")
    assert status == 403, raw
    assert gw.mock_requests() == []
    status, _, raw = gw.post_messages(messages_body(model=SONNET), key=t.api_key)
    assert status == 200, raw
    # the model list shows what the key may use
    status, _, raw = gw.get("/v1/models?limit=1000", key=t.api_key)
    assert status == 200, raw
    ids = [m["id"] for m in json.loads(raw)["data"]]
    assert SONNET in ids and HAIKU not in ids
    status, _, _ = gw.get("/v1/models/" + HAIKU, key=t.api_key)
    assert status == 404
    # an empty list lets every model of the group through again
    assert gw.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"models": []})["models"] is None
    status, _, raw = gw.post_messages(messages_body(model=HAIKU), key=t.api_key)
    assert status == 200, raw
    for bad, word in (("claude", "an array"), (["a b"], "no spaces"), ([1], "an array"),
                      (["x"] * 33, "at most 32")):
        status, body = gw.admin("PATCH", "/admin/keys/%d" % t.key["id"], {"models": bad})
        assert status == 400 and word in body["error"]["message"], body


def test_a_key_stops_at_its_budget(gateway):
    gw = gateway
    t = gw.new_tenant(balance_usd="100")
    key = gw.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"budget_usd": "0.01"})
    assert key["budget_nanousd"] == 10_000_000 and key["budget_usd"] == "0.01"
    assert key["spent_nanousd"] == 0 and key["left_nanousd"] == 10_000_000
    body = messages_body("x", model=SONNET, mock={"usage": USAGE})
    answered = 0
    for _ in range(6):
        status, _, raw = gw.post_messages(body, key=t.api_key)
        if status == 402:
            break
        assert status == 200, raw
        answered += 1
        gw.wait_usage({"key_id": t.key["id"]}, count=answered)
        time.sleep(0.3)
    # 4.5 M each: the third takes the key past its 10 M
    assert answered == 3
    assert error_of(raw) == ("billing_error", "This API key's budget of $0.01 is used up")
    key = gw.admin_ok("GET", "/admin/keys/%d" % t.key["id"])
    assert key["spent_nanousd"] == 3 * COST and key["left_nanousd"] == 0
    # its user's balance is untouched by the refusal; another key of the user serves
    other = gw.create_key(t.user["id"], t.group["id"])["key"]
    assert gw.post_messages(body, key=other)[0] == 200
    # /v1/usage tells the key where it stands
    status, _, raw = gw.get("/v1/usage", key=t.api_key)
    usage = json.loads(raw)
    assert usage["isValid"] is False and usage["remaining"] == 0
    # a larger budget lets it in again
    gw.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"budget_usd": "1"})
    assert gw.post_messages(body, key=t.api_key)[0] == 200


def test_a_daily_budget_names_its_window(gateway, ctl):
    gw = gateway
    t = gw.new_tenant(balance_usd="100")
    shown = ctl.json("key", "set", t.key["id"], "--daily-budget", "0.005", "--model",
                     "claude-sonnet-*")
    assert shown["daily_limit_nanousd"] == 5_000_000 and shown["models"] == ["claude-sonnet-*"]
    body = messages_body("x", model=SONNET, mock={"usage": USAGE})
    assert gw.post_messages(body, key=t.api_key)[0] == 200
    gw.wait_usage({"key_id": t.key["id"]})
    time.sleep(0.3)
    assert gw.post_messages(body, key=t.api_key)[0] == 200
    gw.wait_usage({"key_id": t.key["id"]}, count=2)
    time.sleep(0.3)
    status, headers, raw = gw.post_messages(body, key=t.api_key)
    assert status == 402, raw
    kind, message = error_of(raw)
    assert kind == "billing_error" and "daily budget is used up" in message
    assert 86000 < int(headers["retry-after"]) <= 86400
    text = ctl("key", "show", t.key["id"]).stdout
    assert "daily budget" in text and "0.009 of 0.005 USD used" in text
    assert "claude-sonnet-*" in text
    shown = ctl.json("key", "set", t.key["id"], "--all-models", "--daily-budget", "0")
    assert shown["models"] is None and shown["daily_limit_nanousd"] == 0
    assert gw.post_messages(body, key=t.api_key)[0] == 200


def test_fifty_clients_one_small_key_budget(gateway):
    """Fifty at once against a key budget that covers about two: two or
    three answers, 402 for the rest, on shm and on Redis."""
    gw = gateway
    t = gw.new_tenant(balance_usd="100", concurrency=100)
    gw.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"budget_usd": "0.01"})
    body = harness.body_of_size(4000, text="x", model=SONNET, max_tokens=100,
                                mock={"usage": USAGE, "delay_ms": 400})
    results = [(status, raw) for status, _, raw in gw.post_at_once(body, t.api_key)]
    answered = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 402]
    assert len(answered) + len(refused) == 50, [r[0] for r in results]
    assert 2 <= len(answered) <= 3, len(answered)
    assert all(error_of(raw)[0] == "billing_error" for _, raw in refused)
    gw.wait_usage({"key_id": t.key["id"]}, count=len(answered))
    time.sleep(0.5)
    rows = gw.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"]
    assert len(rows) == len(answered)
    key = gw.admin_ok("GET", "/admin/keys/%d" % t.key["id"])
    assert key["spent_nanousd"] == COST * len(rows)
    user = gw.admin_ok("GET", "/admin/users/%d" % t.user["id"])
    assert user["balance_nanousd"] == 100_000_000_000 - COST * len(rows)


def test_daily_budget_counts_what_is_held_across_a_reload(gateway):
    """The first row starts the key's daily window in the database and an
    operator's change reloads every cache: later requests still count the
    one in flight. A daily budget of about two requests answers the slow
    one, a fast one and one more; then 402."""
    gw = gateway
    t = gw.new_tenant(balance_usd="100", concurrency=100)
    gw.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"daily_limit_usd": "0.01"})

    def body(delay_ms):
        return harness.body_of_size(4000, text="x", model=SONNET, max_tokens=100,
                                    mock={"usage": USAGE, "delay_ms": delay_ms})
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(gw.post_messages, body(4000), key=t.api_key)
        deadline = time.monotonic() + 10
        while not gw.mock_requests() and time.monotonic() < deadline:
            time.sleep(0.05)
        status, _, raw = gw.post_messages(body(0), key=t.api_key)
        assert status == 200, raw
        gw.wait_usage({"key_id": t.key["id"]}, count=1)
        gw.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"name": gw.unique("k")})
        status, _, raw = gw.post_messages(body(0), key=t.api_key)
        assert status == 200, raw
        status, _, raw = gw.post_messages(body(0), key=t.api_key)
        assert status == 402 and "budget is used up" in error_of(raw)[1], raw
        assert slow.result()[0] == 200
    rows = gw.wait_usage({"key_id": t.key["id"]}, count=3)
    assert len(rows) == 3
    key = gw.admin_ok("GET", "/admin/keys/%d" % t.key["id"])
    assert key["daily_usage_nanousd"] == key["spent_nanousd"] == COST * 3
