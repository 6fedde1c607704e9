"""Groups billed by subscription: a key of such a group needs a running
subscription, its requests add their total cost to the subscription's daily,
weekly and monthly windows instead of touching the balance, and a used-up
window answers 429 naming itself and when it starts again."""

import concurrent.futures
import json
import time

import harness
from harness import messages_body

SONNET = "claude-sonnet-4-20250514"
USAGE = {"input_tokens": 1000, "output_tokens": 100}
COST = 4_500_000  # 1,000 x 3,000 + 100 x 15,000 nano-USD, multiplier 1


def error_of(raw):
    body = json.loads(raw)
    return body["error"]["type"], body["error"]["message"]


def test_subscription_windows(gateway):
    gw = gateway
    group = gw.create_group(billing_type="subscription", daily_limit_usd="0.01",
                            monthly_limit_usd="100")
    assert group["billing_type"] == "subscription"
    assert group["daily_limit_nanousd"] == 10_000_000 and group["daily_limit_usd"] == "0.01"
    assert group["weekly_limit_nanousd"] == 0
    user = gw.create_user(balance_usd="0")
    key = gw.create_key(user["id"], group["id"])["key"]
    gw.create_account([group["id"]])
    body = messages_body("x", model=SONNET, mock={"usage": USAGE})

    status, _, raw = gw.post_messages(body, key=key)
    assert status == 403, raw
    kind, message = error_of(raw)
    assert kind == "permission_error" and "no active subscription" in message
    assert gw.mock_requests() == []

    sub = gw.admin_ok("POST", "/admin/subscriptions",
                      {"user_id": user["id"], "group_id": group["id"], "days": 30}, 201)
    assert abs(sub["expires_at"] - (time.time() + 30 * 86400)) < 60
    assert sub["status"] == "active" and sub["daily_usage_nanousd"] == 0

    # answered on a zero balance: the window pays
    status, _, raw = gw.post_messages(body, key=key)
    assert status == 200, raw
    [row] = gw.wait_usage({"user_id": user["id"]})
    assert row["billing_type"] == "subscription" and row["total_cost_nanousd"] == COST

    # requests until the daily window is used up (the third takes it past 0.01)
    answered, refused = 1, None
    for _ in range(6):
        gw.wait_usage({"user_id": user["id"]}, count=answered)
        time.sleep(0.3)
        status, headers, raw = gw.post_messages(body, key=key)
        if status == 429:
            refused = (headers, raw)
            break
        assert status == 200, raw
        answered += 1
    assert refused, "the daily allowance never ran out"
    assert answered == 3
    kind, message = error_of(refused[1])
    assert kind == "rate_limit_error"
    assert "daily allowance of this subscription is used up" in message
    assert 86000 < int(refused[0]["retry-after"]) <= 86400

    sub = gw.admin_ok("GET", "/admin/subscriptions/%d" % sub["id"])
    rows = gw.admin_ok("GET", "/admin/usage?user_id=%d" % user["id"])["data"]
    assert len(rows) == answered
    assert sub["daily_usage_nanousd"] == COST * answered
    assert sub["monthly_usage_nanousd"] == COST * answered
    assert sub["weekly_usage_nanousd"] == COST * answered
    first = min(r["created_at"] for r in rows)
    assert abs(sub["daily_start"] - first) <= 1
    assert gw.admin_ok("GET", "/admin/users/%d" % user["id"])["balance_nanousd"] == 0

    # extended by a day; then ended; then disabled
    longer = gw.admin_ok("POST", "/admin/subscriptions",
                         {"user_id": user["id"], "group_id": group["id"], "days": 1}, 201)
    assert longer["id"] == sub["id"] and longer["expires_at"] == sub["expires_at"] + 86400
    gw.admin_ok("PATCH", "/admin/subscriptions/%d" % sub["id"],
                {"expires_at": int(time.time()) - 10})
    status, _, raw = gw.post_messages(body, key=key)
    assert status == 403 and "ended on" in error_of(raw)[1]
    gw.admin_ok("PATCH", "/admin/subscriptions/%d" % sub["id"],
                {"expires_at": int(time.time()) + 3600, "status": "disabled"})
    status, _, raw = gw.post_messages(body, key=key)
    assert status == 403 and "no active subscription" in error_of(raw)[1]
    listed = gw.admin_ok("GET", "/admin/subscriptions?user_id=%d" % user["id"])["data"]
    assert [s["id"] for s in listed] == [sub["id"]]


def test_fifty_clients_one_small_window(gateway):
    """Each request holds its estimate against the allowance while in
    flight, as balances do: fifty at once against a daily window that covers
    about two get two or three answers, and 429 naming the window."""
    gw = gateway
    group = gw.create_group(billing_type="subscription", daily_limit_usd="0.01")
    user = gw.create_user(balance_usd="0")
    key = gw.create_key(user["id"], group["id"], concurrency=100)["key"]
    gw.create_account([group["id"]], concurrency=100)
    gw.admin_ok("POST", "/admin/subscriptions",
                {"user_id": user["id"], "group_id": group["id"], "days": 30}, 201)
    # 4,000 bytes are estimated at 1,000 input tokens, as the upstream reports:
    # the hold is the cost. The answers take long enough for all fifty to be
    # in flight together, also in a slow (sanitizer) build.
    body = harness.body_of_size(4000, text="x", model=SONNET, max_tokens=100,
                                mock={"usage": USAGE, "delay_ms": 1500})
    results = gw.post_at_once(body, key)
    answered = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    assert len(answered) + len(refused) == 50, [r[0] for r in results]
    assert 2 <= len(answered) <= 3, len(answered)
    for _, headers, raw in refused:
        kind, message = error_of(raw)
        assert kind == "rate_limit_error" and "daily allowance" in message, message
        assert int(headers["retry-after"]) >= 1
    rows = gw.wait_usage({"user_id": user["id"]}, count=len(answered))
    time.sleep(0.5)
    rows = gw.admin_ok("GET", "/admin/usage?user_id=%d" % user["id"])["data"]
    assert len(rows) == len(answered)
    sub = gw.admin_ok("GET", "/admin/subscriptions?user_id=%d" % user["id"])["data"][0]
    assert sub["daily_usage_nanousd"] == COST * len(rows)
    # the next request finds the window used up
    status, _, raw = gw.post_messages(body, key=key)
    assert status == 429 and "daily allowance" in error_of(raw)[1], raw


def small_daily_window(gw):
    """A user, a key of a subscription group whose daily allowance covers
    about two requests of body(), and the user's subscription."""
    group = gw.create_group(billing_type="subscription", daily_limit_usd="0.01")
    user = gw.create_user(balance_usd="0")
    created = gw.create_key(user["id"], group["id"], concurrency=100)
    gw.create_account([group["id"]], concurrency=100)
    sub = gw.admin_ok("POST", "/admin/subscriptions",
                      {"user_id": user["id"], "group_id": group["id"], "days": 30}, 201)
    return user, created, sub


def body(delay_ms):
    """4,000 bytes, estimated at the 1,000 input tokens the upstream reports,
    answered after delay_ms."""
    return harness.body_of_size(4000, text="x", model=SONNET, max_tokens=100,
                                mock={"usage": USAGE, "delay_ms": delay_ms})


def test_window_counts_what_is_held_across_a_reload(gateway):
    """The first row written starts the window in the database, and an
    operator's change elsewhere reloads every cache: requests after that
    still count the one in flight before it. A daily window of about two
    requests answers the slow one, a fast one, one more, and then 429."""
    gw = gateway
    user, created, sub = small_daily_window(gw)
    key = created["key"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(gw.post_messages, body(4000), key=key)
        deadline = time.monotonic() + 10
        while not gw.mock_requests() and time.monotonic() < deadline:
            time.sleep(0.05)
        status, _, raw = gw.post_messages(body(0), key=key)
        assert status == 200, raw
        gw.wait_usage({"user_id": user["id"]}, count=1)
        gw.admin_ok("PATCH", "/admin/keys/%d" % created["id"], {"name": gw.unique("k")})
        status, _, raw = gw.post_messages(body(0), key=key)
        assert status == 200, raw
        status, _, raw = gw.post_messages(body(0), key=key)
        assert status == 429 and "daily allowance" in error_of(raw)[1], raw
        assert slow.result()[0] == 200
    rows = gw.wait_usage({"user_id": user["id"]}, count=3)
    sub = gw.admin_ok("GET", "/admin/subscriptions?user_id=%d" % user["id"])["data"][0]
    assert sub["daily_usage_nanousd"] == COST * len(rows) == COST * 3


def test_a_request_across_the_end_of_a_window(gateway):
    """A request that starts before its daily window ends and finishes
    after counts in the next day, in the database as in what requests of
    the next day hold against: with one of the next day's requests already
    done, one more fits in the day's allowance, not two."""
    gw = gateway
    user, created, sub = small_daily_window(gw)
    key = created["key"]
    assert gw.post_messages(body(0), key=key)[0] == 200
    gw.wait_usage({"user_id": user["id"]}, count=1)
    # the day ends in 3 s; an operator's change makes every process see it
    ends = time.time() + 3
    gw.db_write("UPDATE s2a_subscriptions SET daily_start = %d WHERE id = %d"
                % (int(ends) - 86400, sub["id"]))
    gw.admin_ok("PATCH", "/admin/keys/%d" % created["id"], {"name": gw.unique("k")})
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        across = pool.submit(gw.post_messages, body(6000), key=key)
        time.sleep(max(0, ends + 1 - time.time()))
        # the next day's first request, while the other still runs
        status, _, raw = gw.post_messages(body(0), key=key)
        assert status == 200, raw
        assert across.result()[0] == 200
    gw.wait_usage({"user_id": user["id"]}, count=3)
    statuses = [gw.post_messages(body(0), key=key)[0] for _ in range(3)]
    assert statuses == [200, 429, 429], statuses
    gw.wait_usage({"user_id": user["id"]}, count=4)
    time.sleep(0.5)
    sub = gw.admin_ok("GET", "/admin/subscriptions?user_id=%d" % user["id"])["data"][0]
    assert sub["daily_usage_nanousd"] == COST * 3, sub


def test_subscription_admin_refusals(gateway):
    gw = gateway
    for bad in ({"billing_type": "credit"}, {"daily_limit_usd": "-1"},
                {"weekly_limit_usd": "lots"}):
        status, body = gw.admin("POST", "/admin/groups", dict(bad, name=gw.unique("g")))
        assert status == 400, (bad, body)
    user = gw.create_user()
    group = gw.create_group()
    for bad in ({"user_id": user["id"], "group_id": group["id"]},
                {"user_id": user["id"], "group_id": group["id"], "days": 0},
                {"user_id": user["id"], "group_id": group["id"], "days": "7"}):
        status, body = gw.admin("POST", "/admin/subscriptions", bad)
        assert status == 400, (bad, body)
    status, _ = gw.admin("POST", "/admin/subscriptions",
                         {"user_id": 999999, "group_id": group["id"], "days": 3})
    assert status == 404
    status, _ = gw.admin("PATCH", "/admin/subscriptions/999999", {"status": "disabled"})
    assert status == 404

