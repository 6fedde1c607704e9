"""What an operator watches: the Prometheus scrape (SetHandler sub2api-metrics),
the health check for load balancers (SetHandler sub2api-health), the request
notes for LogFormat, and the gateway's own time in Server-Timing."""

import json
import re
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import messages_body

SONNET = "claude-sonnet-4-20250514"
USAGE = {"input_tokens": 1200, "output_tokens": 300, "cache_read_input_tokens": 50,
         "cache_creation_input_tokens": 20}


def scrape(gw):
    """The scrape as Prometheus parses it: {(name, labels): value}, types by family."""
    status, headers, raw = gw.get("/metrics")
    assert status == 200, raw
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    samples, types = {}, {}
    for family in text_string_to_metric_families(raw.decode()):
        types[family.name] = family.type
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, "the same series twice: %r" % (key,)
            samples[key] = s.value
    return samples, types


def scrape_until(gw, ready, timeout=5):
    """Scrapes until ready(samples) holds: a request is counted as it is
    logged, just after its answer went out."""
    deadline = time.monotonic() + timeout
    while True:
        samples, types = scrape(gw)
        if ready(samples) or time.monotonic() > deadline:
            return samples, types
        time.sleep(0.05)


def value(samples, metric, **labels):
    return samples.get((metric, tuple(sorted(labels.items()))), 0)


def series(samples, metric, **labels):
    """Samples of `metric` whose labels include `labels`."""
    want = set(labels.items())
    return {k[1]: v for k, v in samples.items() if k[0] == metric and want <= set(k[1])}


def test_scrape_counts_requests_tokens_cost_and_times(gateway):
    gw = gateway
    t = gw.new_tenant(balance_usd="5")
    acc = str(t.accounts[0]["id"])
    before, types = scrape(gw)
    server = next(dict(k)["server"] for k in series(before, "sub2api_journal_bytes"))

    status, _, raw = gw.post_messages(messages_body("a", model=SONNET, mock={"usage": USAGE}),
                                      key=t.api_key)
    assert status == 200, raw
    res = gw.stream_messages(messages_body("b", model=SONNET, mock={"usage": USAGE}),
                             key=t.api_key)
    assert res.status == 200
    status, _, _ = gw.post_messages(messages_body("c", model=SONNET), key="sk-s2a-wrong")
    assert status == 401
    gw.wait_usage({"key_id": t.key["id"]}, count=2)
    rows = gw.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"]
    ok = dict(server=server, model=SONNET, account=acc)
    refused = dict(server=server, model="", account="", status="401")
    after, types = scrape_until(gw, lambda s: (
        value(s, "sub2api_requests_total", status="200", **ok) == 2
        and value(s, "sub2api_requests_total", **refused)
        > value(before, "sub2api_requests_total", **refused)))

    assert value(after, "sub2api_requests_total", status="200", **ok) == 2
    assert (value(after, "sub2api_requests_total", **refused)
            - value(before, "sub2api_requests_total", **refused)) == 1
    # tokens by class and the cost agree with the usage rows
    for cls, field in (("input", "input_tokens"), ("output", "output_tokens"),
                       ("cache_read", "cache_read_tokens"),
                       ("cache_write", "cache_creation_tokens")):
        assert value(after, "sub2api_tokens_total", **{"class": cls}, **ok) == \
            sum(r[field] for r in rows), cls
    cost = sum(r["actual_cost_nanousd"] for r in rows) / 1e9
    assert value(after, "sub2api_cost_usd_total", **ok) == pytest.approx(cost, abs=1e-9)
    assert cost > 0

    for name in ("sub2api_upstream_latency_seconds", "sub2api_time_to_first_token_seconds",
                 "sub2api_added_seconds"):
        assert types[name] == "histogram"
        count = value(after, name + "_count")
        assert count - value(before, name + "_count") >= 2, name
        buckets = sorted(((float(dict(k)["le"]), v)
                          for k, v in series(after, name + "_bucket").items()))
        assert [v for _, v in buckets] == sorted(v for _, v in buckets), "cumulative"
        assert buckets[-1] == (float("inf"), count)
    assert value(after, "sub2api_added_seconds_sum") > 0
    # the parser names counter families without their _total
    assert types["sub2api_requests"] == "counter"
    assert types["sub2api_writer_queue_rows"] == "gauge"
    assert value(after, "sub2api_writer_queue_rows") >= 0
    assert ("sub2api_store_errors_total", ()) in after
    assert ("sub2api_database_errors_total", ()) in after
    assert value(after, "sub2api_journal_bytes", server=server) == 0


def test_scrape_shows_account_states(gateway):
    gw = gateway
    gw.expect_error(r"S2A0207|S2A0204")
    t = gw.new_tenant(balance_usd="5", concurrency=3, priority=1)
    second = gw.create_account([t.group["id"]], priority=5)
    a, b = str(t.account["id"]), str(second["id"])
    samples, _ = scrape(gw)
    assert series(samples, "sub2api_account_state", account=a, state="active")
    assert series(samples, "sub2api_account_info", account=a, name=t.account["name"])
    assert list(series(samples, "sub2api_account_concurrency", account=a).values()) == [3]
    # the first account answers 429 with a reset an hour ahead: it cools, the
    # second answers; then the operator takes the second out of rotation
    reset = int(time.time()) + 3600
    status, _, raw = gw.post_messages(
        messages_body("x", model=SONNET, mock={
            "status_for": {t.credential: 429},
            "headers": {"anthropic-ratelimit-unified-reset": str(reset)}}),
        key=t.api_key)
    assert status == 200, raw
    gw.admin_ok("PATCH", "/admin/accounts/%s" % b, {"schedulable": False})
    samples, _ = scrape_until(gw, lambda s: series(s, "sub2api_requests_total", account=b))
    assert series(samples, "sub2api_account_state", account=a, state="rate_limited")
    assert not series(samples, "sub2api_account_state", account=a, state="active")
    [left] = series(samples, "sub2api_account_cooldown_seconds", account=a).values()
    assert 3000 < left <= 3600
    assert series(samples, "sub2api_account_state", account=b, state="unschedulable")
    assert list(series(samples, "sub2api_account_in_flight", account=a).values()) == [0]
    assert series(samples, "sub2api_requests_total", account=b, status="200")


def test_health(gateway):
    gw = gateway
    status, headers, raw = gw.get("/health")
    assert status == 200, raw
    assert json.loads(raw) == {"status": "ok", "database": "ok", "store": "ok"}
    status, _, _ = gw.post_messages({}, path="/health")
    assert status == 405
    if gw.redis:
        gw.expect_error(r"S2A0012")
        gw.redis.stop()
        try:
            status, _, raw = gw.get("/health")
        finally:
            gw.redis.start()
        assert status == 503
        assert json.loads(raw)["store"] == "unreachable"
        # a process tries Redis again 0.5 s after a failed connect
        time.sleep(0.6)
        assert gw.get("/health")[0] == 200
    if gw.pg:
        gw.expect_error(r"AH00629|AH00633|AH00635|mod_dbd|dbd_pgsql|connection")
        gw.pg.stop()
        try:
            status, _, raw = gw.get("/health")
        finally:
            gw.pg.resume()
        assert status == 503
        assert json.loads(raw) == {"status": "unavailable", "database": "unreachable",
                                   "store": "ok"}
    deadline = time.monotonic() + 20
    while gw.get("/health")[0] != 200:
        assert time.monotonic() < deadline, "healthy again once the servers are back"
        time.sleep(0.2)


def notes_line(gw, request_id, timeout=5):
    path = gw.httpd.log_dir / "notes_log"
    deadline = time.monotonic() + timeout
    while True:
        for line in path.read_text().splitlines():
            if line.startswith(request_id + " "):
                return dict(f.split("=", 1) for f in line.split()[2:])
        assert time.monotonic() < deadline, "no access-log line for %s" % request_id
        time.sleep(0.1)


def test_log_notes(gateway):
    gw = gateway
    t = gw.new_tenant(balance_usd="5")
    status, headers, raw = gw.post_messages(
        messages_body("x", model=SONNET, mock={"usage": USAGE}), key=t.api_key)
    assert status == 200, raw
    rid = headers["x-sub2api-request-id"]
    row = gw.wait_usage({"key_id": t.key["id"]})[0]
    f = notes_line(gw, rid)
    assert f["user"] == str(t.user["id"]) and f["key"] == str(t.key["id"])
    assert f["account"] == str(t.accounts[0]["id"])
    assert f["model"] == SONNET and f["sent"] == SONNET
    assert (f["in"], f["out"], f["cr"], f["cw"]) == ("1200", "300", "50", "20")
    assert f["cost"] == str(row["actual_cost_nanousd"] / 1e9).rstrip("0").rstrip(".")
    assert f["attempts"] == "1" and f["outcome"] == "ok"
    assert int(f["added"]) >= 0
    # a refused request logs what is known, "-" for the rest; no key in the log
    path = gw.httpd.log_dir / "notes_log"
    seen = len(path.read_text())
    status, headers, _ = gw.post_messages(messages_body("x", model=SONNET),
                                          key="sk-s2a-not-a-key")
    assert status == 401
    deadline = time.monotonic() + 5
    while True:  # the line is written just after the answer went out
        refused = [line.split() for line in path.read_text()[seen:].splitlines()
                   if line.split()[1:2] == ["401"]]
        if refused or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert refused, "no access-log line for the refused request"
    assert "user=-" in refused[0] and "account=-" in refused[0] and "cost=-" in refused[0]
    text = path.read_text()
    assert "sk-s2a-not-a-key" not in text and t.api_key not in text


def test_server_timing(gateway):
    gw = gateway
    t = gw.new_tenant(balance_usd="5")
    status, headers, raw = gw.post_messages(messages_body("x", model=SONNET),
                                            key=t.api_key, path="/timed/v1/messages")
    assert status == 200, raw
    m = re.fullmatch(r"sub2api;dur=(\d+\.\d{3}), upstream;dur=(\d+\.\d{3})",
                     headers.get("server-timing", ""))
    assert m, headers.get("server-timing")
    assert float(m.group(1)) >= 0 and float(m.group(2)) > 0
    res = gw.stream_messages(messages_body("x", model=SONNET), key=t.api_key,
                             path="/timed/v1/messages")
    assert res.status == 200 and "server-timing" in res.headers
    # off unless the location asks for it
    status, headers, _ = gw.post_messages(messages_body("x", model=SONNET), key=t.api_key)
    assert status == 200 and "server-timing" not in headers
