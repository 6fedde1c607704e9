"""Balances under concurrent spending: each request holds its estimated
cost while in flight, so many requests at once overdraw a small balance by
at most about one request, and every answer is billed exactly once."""

import time

import harness

SONNET = "claude-sonnet-4-20250514"
# 4,000 bytes of body are estimated at 1,000 input tokens; the upstream reports
# as many, and all of max_tokens: the estimate is the cost, 4.5 million nano-USD
# (1,000 x 3,000 + 100 x 15,000)
COST = 4_500_000


def body_of():
    return harness.body_of_size(4000, text="x", model=SONNET, max_tokens=100,
                                mock={"usage": {"input_tokens": 1000, "output_tokens": 100},
                                      "delay_ms": 400})


def test_fifty_clients_one_small_balance(gateway):
    t = gateway.new_tenant(balance_usd="0.01", concurrency=100)
    start = 10_000_000
    results = [(status, raw) for status, _, raw in gateway.post_at_once(body_of(), t.api_key)]
    answered = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 402]
    assert len(answered) + len(refused) == 50, [r[0] for r in results]
    assert all(b"billing_error" in raw for _, raw in refused)
    # 10 M let in requests holding 4.5 M each while anything was left unheld:
    # three at most, the third overdrawing by less than one request
    assert 1 <= len(answered) <= 3, len(answered)

    rows = gateway.wait_usage({"key_id": t.key["id"]}, count=len(answered))
    time.sleep(0.5)
    rows = gateway.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"]
    assert len(rows) == len(answered)
    assert len({r["request_id"] for r in rows}) == len(rows)
    assert all(r["actual_cost_nanousd"] == COST for r in rows)
    after = gateway.admin_ok("GET", "/admin/users/%d" % t.user["id"])["balance_nanousd"]
    assert after == start - COST * len(rows)
    assert after > -COST

    # spent: the next request is refused, and a top-up lets requests in again
    status, _, raw = gateway.post_messages(body_of(), key=t.api_key)
    assert status == 402, raw
    gateway.admin_ok("PATCH", "/admin/users/%d" % t.user["id"],
                     {"add_balance_usd": "0.1", "reason": "top-up"})
    status, _, raw = gateway.post_messages(body_of(), key=t.api_key)
    assert status == 200, raw
