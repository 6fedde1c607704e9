"""What clients call besides /v1/messages: GET /v1/usage, the standing of the
caller's own key (balance or subscription), and POST /v1/redeem, a redeem
code that works once."""

import json
import threading
import time

from harness import messages_body

SONNET = "claude-sonnet-4-20250514"
USAGE = {"input_tokens": 1000, "output_tokens": 100}


def error_of(raw):
    body = json.loads(raw)
    return body["error"]["type"], body["error"]["message"]


def test_usage_endpoint(gateway):
    gw = gateway
    # balance: what is left, in USD
    t = gw.new_tenant(balance_usd="2.5")
    status, headers, raw = gw.get("/v1/usage", key=t.api_key)
    assert status == 200, raw
    assert headers["content-type"].startswith("application/json")
    assert json.loads(raw) == {"isValid": True, "planName": t.group["name"], "remaining": 2.5,
                               "unit": "USD"}
    status, _, raw = gw.post_messages(messages_body("x", model=SONNET, mock={"usage": USAGE}),
                                      key=t.api_key)
    assert status == 200
    gw.wait_usage({"key_id": t.key["id"]})
    time.sleep(0.3)
    status, _, raw = gw.get("/v1/usage", key=t.api_key)
    assert json.loads(raw)["remaining"] == 2.4955
    # subscription: the smallest allowance left
    group = gw.create_group(billing_type="subscription", daily_limit_usd="1",
                            weekly_limit_usd="0.25")
    user = gw.create_user(balance_usd="0")
    key = gw.create_key(user["id"], group["id"])["key"]
    status, _, raw = gw.get("/v1/usage", key=key)
    assert json.loads(raw)["isValid"] is False
    gw.admin_ok("POST", "/admin/subscriptions",
                {"user_id": user["id"], "group_id": group["id"], "days": 7}, 201)
    status, _, raw = gw.get("/v1/usage", key=key)
    standing = json.loads(raw)
    assert standing["isValid"] is True and standing["remaining"] == 0.25
    assert standing["planName"] == group["name"] and standing["unit"] == "USD"
    # the key is required, and only GET
    status, _, raw = gw.get("/v1/usage", key=None)
    assert status == 401 and error_of(raw)[0] == "authentication_error"
    status, _, raw = gw.post_messages({}, key=key, path="/v1/usage")
    assert status == 405


def test_redeem_codes(gateway):
    gw = gateway
    t = gw.new_tenant(balance_usd="1")
    made = gw.admin_ok("POST", "/admin/redeem_codes", {"count": 2, "balance_usd": "5"}, 201)
    assert made["kind"] == "balance" and len(made["codes"]) == 2
    first, second = made["codes"]
    assert first.startswith("rc-") and first != second
    listed = gw.admin("GET", "/admin/redeem_codes")
    assert listed[0] == 200 and first not in json.dumps(listed[1])
    mine = [c for c in listed[1]["data"] if first.startswith(c["prefix"].rstrip("."))]
    assert mine and mine[0]["used_by"] == 0 and mine[0]["amount_nanousd"] == 5_000_000_000

    status, _, raw = gw.post_messages({"code": first}, key=t.api_key, path="/v1/redeem")
    assert status == 200, raw
    assert json.loads(raw) == {"redeemed": True, "kind": "balance", "amount": 5, "unit": "USD"}
    user = gw.admin_ok("GET", "/admin/users/%d" % t.user["id"])
    assert user["balance_nanousd"] == 6_000_000_000
    log = gw.admin_ok("GET", "/admin/balance_log?user_id=%d" % t.user["id"])["data"]
    assert (log[0]["kind"], log[0]["delta_nanousd"]) == ("redeem", 5_000_000_000)
    status, _, raw = gw.post_messages({"code": first}, key=t.api_key, path="/v1/redeem")
    assert status == 400 and "used already" in error_of(raw)[1]
    status, _, raw = gw.post_messages({"code": "rc-" + "0" * 32}, key=t.api_key,
                                      path="/v1/redeem")
    assert status == 404 and error_of(raw)[0] == "not_found_error"

    # ten clients race for one code: one gets it
    others = [gw.new_tenant(balance_usd="0") for _ in range(10)]
    results = []

    def race(tenant):
        results.append(gw.post_messages({"code": second}, key=tenant.api_key,
                                         path="/v1/redeem")[0])
    threads = [threading.Thread(target=race, args=(o,)) for o in others]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == [200] + [400] * 9
    balances = [gw.admin_ok("GET", "/admin/users/%d" % o.user["id"])["balance_nanousd"]
                for o in others]
    assert sorted(balances) == [0] * 9 + [5_000_000_000]
    # the winner can spend it at once
    winner = others[balances.index(5_000_000_000)]
    status, _, raw = gw.post_messages(messages_body("x", model=SONNET, mock={"usage": USAGE}),
                                      key=winner.api_key)
    assert status == 200, raw

    # days of a subscription
    group = gw.create_group(billing_type="subscription")
    made = gw.admin_ok("POST", "/admin/redeem_codes", {"group_id": group["id"], "days": 3}, 201)
    status, _, raw = gw.post_messages({"code": made["codes"][0]}, key=t.api_key,
                                      path="/v1/redeem")
    assert status == 200 and json.loads(raw)["kind"] == "subscription"
    [sub] = gw.admin_ok("GET", "/admin/subscriptions?user_id=%d" % t.user["id"])["data"]
    assert sub["group_id"] == group["id"] and abs(sub["expires_at"] - time.time() - 3 * 86400) < 60

    for bad in ({"count": 0, "balance_usd": "1"}, {"count": 1}, {"balance_usd": "-1"},
                {"group_id": group["id"]}, {"group_id": group["id"], "days": 0}):
        status, _ = gw.admin("POST", "/admin/redeem_codes", bad)
        assert status == 400, bad
    status, _ = gw.admin("POST", "/admin/redeem_codes", {"group_id": 999999, "days": 1})
    assert status == 404
    status, _, raw = gw.post_messages({}, key=t.api_key, path="/v1/redeem")
    assert status == 400


def test_count_tokens_endpoint(gateway):
    gw = gateway
    gw.expect_error(r"S2A0207")
    t = gw.new_tenant(balance_usd="0", accounts=2)
    body = {"model": SONNET, "messages": [{"role": "user", "content": "mock:" + json.dumps(
        {"usage": {"input_tokens": 77}, "status_for": {t.credentials[0]: 529}})}]}
    # free even at a zero balance; an overloaded account is passed over
    status, headers, raw = gw.post_messages(body, key=t.api_key,
                                            path="/v1/messages/count_tokens")
    assert status == 200, raw
    assert json.loads(raw) == {"input_tokens": 77}
    assert headers["x-sub2api-request-id"]
    # a client's own metadata goes on, with its user id made a pseudonym
    body["metadata"] = {"user_id": "me@example.com"}
    gw.mock_clear()
    status, _, raw = gw.post_messages(body, key=t.api_key, path="/v1/messages/count_tokens")
    assert status == 400 and "metadata" in raw.decode()  # as upstream refuses it
    sent = json.loads(gw.mock_requests()[-1]["body"])
    assert sent["metadata"]["user_id"] != "me@example.com"
    # no usage row: a message sent after the counts is the key's only row
    message = {"model": SONNET, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    status, _, raw = gw.post_messages(message, key=t.api_key)
    assert status == 402  # a zero balance: messages are not free
    gw.admin_ok("PATCH", "/admin/users/%d" % t.user["id"], {"balance_usd": "1"})
    status, _, raw = gw.post_messages(message, key=t.api_key)
    assert status == 200, raw
    gw.wait_usage({"key_id": t.key["id"]})
    time.sleep(0.3)
    rows = gw.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"]
    assert len(rows) == 1 and rows[0]["output_tokens"] > 0
    status, _, raw = gw.post_messages(body, key=None, path="/v1/messages/count_tokens")
    assert status == 401 and error_of(raw)[0] == "authentication_error"
    status, _, raw = gw.get("/v1/messages/count_tokens", key=t.api_key)
    assert status == 405 and "POST" in error_of(raw)[1]
    status, _, raw = gw.post_messages({"model": SONNET}, key=t.api_key,
                                      path="/v1/messages/count_tokens")
    assert status == 400 and error_of(raw) == ("invalid_request_error",
                                               "messages: an array is required")


def test_models_endpoint(gateway):
    gw = gateway
    t = gw.new_tenant(model_mapping={"alias-a": SONNET, "alias-b": SONNET})
    status, _, raw = gw.get("/v1/models?limit=1", key=t.api_key)
    assert status == 200, raw
    page = json.loads(raw)
    assert [m["id"] for m in page["data"]] == ["alias-a"] and page["has_more"] is True
    assert page["first_id"] == page["last_id"] == "alias-a"
    status, _, raw = gw.get("/v1/models?limit=5&after_id=alias-a", key=t.api_key)
    assert [m["id"] for m in json.loads(raw)["data"]] == ["alias-b"]
    for bad in ("0", "1001", "x"):
        status, _, raw = gw.get("/v1/models?limit=" + bad, key=t.api_key)
        assert status == 400 and error_of(raw)[0] == "invalid_request_error"
    # a disabled account's models are not offered
    gw.admin_ok("PATCH", "/admin/accounts/%d" % t.account["id"], {"status": "disabled"})
    status, _, raw = gw.get("/v1/models", key=t.api_key)
    assert json.loads(raw)["data"] == []
    status, _, raw = gw.get("/v1/models", key="sk-s2a-nope")
    assert status == 401
    status, _, raw = gw.get("/v1/nothing-here", key=t.api_key)
    assert status == 404 and error_of(raw)[0] == "not_found_error"
