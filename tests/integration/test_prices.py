"""The price table: a model it lacks is refused or priced like a chosen model
(Sub2apiPriceFallback rules, Sub2apiUnpricedModel); long-context prices over
a model's threshold; a graceful restart reloads the table, and a file broken
at that moment leaves the table loaded before in use."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import harness
from harness import messages_body

HERE = harness.HERE
HAIKU = "claude-3-5-haiku-20241022"
SONNET = "claude-sonnet-4-20250514"
USAGE = {"input_tokens": 1000, "output_tokens": 100}


@pytest.fixture
def priced(tmp_path, mock_upstreams):
    prices = tmp_path / "prices.json"
    shutil.copy(HERE / "prices.json", prices)
    gw = harness.Gateway(harness.new_root("s2a-prices-"), "sqlite", mock_upstreams,
                         prices=prices, extra_conf="Sub2apiUnpricedModel %s\n" % HAIKU)
    try:
        gw.start()
    except harness.HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    offset = gw.log_offset()
    yield gw, prices
    gw.stop()
    bad = [l for l in gw.bad_log_lines(offset) if "S2A0015" not in l]
    assert not bad, "unexpected error-log lines:\n" + "\n".join(bad)


def billed(gw, t, model, count):
    status, _, raw = gw.post_messages(messages_body("x", model=model, mock={"usage": USAGE}),
                                      key=t.api_key)
    assert status == 200, raw
    return gw.wait_usage({"key_id": t.key["id"]}, count=count)[0]


def test_unpriced_model_and_reloads(priced):
    gw, prices = priced
    t = gw.new_tenant()
    # haiku: 0.8 and 4 USD per million tokens in and out
    row = billed(gw, t, "claude-some-future-model", 1)
    assert row["model"] == "claude-some-future-model"
    assert (row["input_cost_nanousd"], row["output_cost_nanousd"]) == (800_000, 400_000)
    log = gw.error_log(gw.test_offset or 0)
    assert re.search(r"S2A0213: model claude-some-future-model has no price in \S+: billed "
                     r"at the prices of %s \(Sub2apiUnpricedModel\)" % HAIKU, log), log
    assert billed(gw, t, SONNET, 2)["input_cost_nanousd"] == 3_000_000
    # the shorthand is a last rule for any name
    assert gw.admin_ok("GET", "/admin/prices")["fallbacks"] == [{"pattern": "*",
                                                                 "model": HAIKU}]

    # broken at a graceful restart: configtest says so, and a restart signalled
    # anyway (kill -USR1) keeps the server running on the old table
    prices.write_text('{"claude-sonnet-4-20250514": {"input_cost_per_token": ')
    with pytest.raises(harness.HarnessError) as exc:
        gw.reload()
    assert "Sub2apiPriceTable" in str(exc.value) and "invalid JSON" in str(exc.value)
    gw.reload(check=False)
    assert "S2A0015" in gw.error_log(gw.test_offset)
    assert billed(gw, t, SONNET, 3)["input_cost_nanousd"] == 3_000_000

    # repaired, with a new price: the next graceful restart takes it
    table = json.loads((HERE / "prices.json").read_text())
    table[SONNET]["input_cost_per_token"] = 6e-06
    prices.write_text(json.dumps(table))
    gw.reload()
    assert billed(gw, t, SONNET, 4)["input_cost_nanousd"] == 6_000_000


def test_unpriced_model_refused_by_default(gateway):
    t = gateway.new_tenant()
    status, _, raw = gateway.post_messages(
        messages_body("x", model="claude-some-future-model"), key=t.api_key)
    assert status == 400
    body = json.loads(raw)
    assert body["error"]["type"] == "invalid_request_error"
    assert "claude-some-future-model has no price" in body["error"]["message"]
    assert gateway.mock_requests() == []


def test_failover_to_an_account_priced_like_the_chosen_model(priced):
    """The account a request moves to maps the model to one the table lacks:
    that attempt is priced like Sub2apiUnpricedModel, as a first choice is."""
    gw, _ = priced
    t = gw.new_tenant(accounts=0)
    first = gw.create_account([t.group["id"]], priority=10)
    gw.create_account([t.group["id"]], priority=20,
                      model_mapping={SONNET: "claude-some-future-model"})
    gw.expect_error(r"S2A0207")
    status, _, raw = gw.post_messages(
        messages_body("x", model=SONNET,
                      mock={"usage": USAGE, "status_for": {gw.credentials[first["id"]]: 529}}),
        key=t.api_key)
    assert status == 200, raw
    [row] = gw.wait_usage({"key_id": t.key["id"]})
    assert row["upstream_model"] == "claude-some-future-model"
    assert (row["input_cost_nanousd"], row["output_cost_nanousd"]) == (800_000, 400_000)


# Claude Sonnet 4.5 over 200k input tokens: $6 in, $22.50 out, $7.50 and $12
# cache writes (5 m, 1 h), $0.60 cache reads per million tokens
LONG = "claude-sonnet-4-5-20250929"


def long_context_cost(u):
    """nano-USD of usage u at the long-context rates of LONG: pico per token / 1000."""
    cw_1h = u.get("cache_creation", {}).get("ephemeral_1h_input_tokens", 0)
    cw_5m = u.get("cache_creation", {}).get("ephemeral_5m_input_tokens", 0)
    return {"input_cost_nanousd": u["input_tokens"] * 6000,
            "output_cost_nanousd": u["output_tokens"] * 22500,
            "cache_creation_cost_nanousd": cw_5m * 7500 + cw_1h * 12000,
            "cache_read_cost_nanousd": u["cache_read_input_tokens"] * 600}


def test_long_context_answer_billed_at_long_context_rates(gateway):
    """A 1M-context answer (about 500k input tokens, cache reads and writes
    included) is billed at the model's long-context rates for every token,
    output too, plain or streamed; 200,000 input tokens exactly are not over
    the threshold and cost the base rates."""
    gw = gateway
    t = gw.new_tenant(balance_usd="100", rate_multiplier="1.5")
    usage = {"input_tokens": 470000, "output_tokens": 3000, "cache_read_input_tokens": 25000,
             "cache_creation": {"ephemeral_5m_input_tokens": 4000,
                                "ephemeral_1h_input_tokens": 1000}}
    want = long_context_cost(usage)
    total = sum(want.values())  # 2,841,000,000 nano-USD
    assert total == 470000 * 6000 + 3000 * 22500 + 4000 * 7500 + 1000 * 12000 + 25000 * 600
    for n, stream in enumerate((False, True), 1):
        body = messages_body("x", model=LONG, stream=stream, max_tokens=4096,
                             mock={"usage": usage})
        headers = {"anthropic-beta": "context-1m-2025-08-07"}
        if stream:
            res = gw.stream_messages(body, key=t.api_key, headers=headers)
            status, raw = res.status, res.raw
        else:
            status, _, raw = gw.post_messages(body, key=t.api_key, headers=headers)
        assert status == 200, raw
        row = gw.wait_usage({"key_id": t.key["id"]}, count=n)[0]
        assert (row["input_tokens"], row["cache_creation_tokens"],
                row["cache_creation_1h_tokens"], row["cache_read_tokens"],
                row["output_tokens"]) == (470000, 5000, 1000, 25000, 3000)
        assert {k: row[k] for k in want} == want
        assert row["total_cost_nanousd"] == total
        assert row["actual_cost_nanousd"] == total * 3 // 2

    # exactly 200,000 input tokens (input + cache writes + cache reads): base rates
    usage = {"input_tokens": 150000, "output_tokens": 1000, "cache_read_input_tokens": 40000,
             "cache_creation_input_tokens": 10000}
    status, _, raw = gw.post_messages(messages_body("x", model=LONG, mock={"usage": usage}),
                                      key=t.api_key)
    assert status == 200, raw
    row = gw.wait_usage({"key_id": t.key["id"]}, count=3)[0]
    assert (row["input_cost_nanousd"], row["output_cost_nanousd"],
            row["cache_creation_cost_nanousd"], row["cache_read_cost_nanousd"]) == (
        150000 * 3000, 1000 * 15000, 10000 * 3750, 40000 * 300)
    # one token more: all of it at the long-context rates
    usage["input_tokens"] = 150001
    status, _, raw = gw.post_messages(messages_body("x", model=LONG, mock={"usage": usage}),
                                      key=t.api_key)
    assert status == 200, raw
    row = gw.wait_usage({"key_id": t.key["id"]}, count=4)[0]
    assert (row["input_cost_nanousd"], row["output_cost_nanousd"],
            row["cache_creation_cost_nanousd"], row["cache_read_cost_nanousd"]) == (
        150001 * 6000, 1000 * 22500, 10000 * 7500, 40000 * 600)
    # the user paid what the rows say
    rows = gw.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"]
    after = gw.admin_ok("GET", "/admin/users/%d" % t.user["id"])["balance_nanousd"]
    assert after == 100 * 10 ** 9 - sum(r["actual_cost_nanousd"] for r in rows)


def own_gateway(request, mocks, prefix, **kwargs):
    """A gateway of its own for a test: started, yielded, stopped; it fails
    on unexpected error-log lines, and its directory goes unless it failed
    (or S2A_KEEP is set)."""
    root = harness.new_root(prefix)
    gw = harness.Gateway(root, request.param, mocks, **kwargs)
    try:
        gw.start()
    except harness.HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    offset = gw.log_offset()
    yield gw
    gw.stop()
    bad = gw.bad_log_lines(offset)
    if not bad and not os.environ.get("S2A_KEEP") and not request.session.testsfailed:
        shutil.rmtree(root, ignore_errors=True)
    assert not bad, "unexpected error-log lines:\n" + "\n".join(bad)


OPUS = "claude-opus-4-20250514"
FALLBACK_CONF = ('Sub2apiPriceFallback "claude-opus-*" %s\n'
                 'Sub2apiPriceFallback "claude-sonnet-?-*" %s\n' % (OPUS, LONG))


@pytest.fixture(params=["sqlite"])
def fallbacks(request, mock_upstreams):
    yield from own_gateway(request, mock_upstreams, "s2a-fallback-", extra_conf=FALLBACK_CONF)


def priced_by_fallback_total(gw):
    status, _, raw = gw.get("/metrics")
    assert status == 200, raw
    for line in raw.decode().splitlines():
        if line.startswith("sub2api_priced_by_fallback_total "):
            return int(float(line.split()[1]))
    raise AssertionError("no sub2api_priced_by_fallback_total in the scrape")


def test_price_fallback_rules(fallbacks):
    """A model the table lacks is billed at the prices of the model the first
    matching rule names (long-context prices included), its row keeping the
    model asked for; the log says so once per model and process, the metrics
    count every such row; a model no rule matches is refused."""
    gw = fallbacks
    t = gw.new_tenant(balance_usd="100")
    usage = {"input_tokens": 1000, "output_tokens": 100}
    for n, stream in enumerate((False, True, False, True), 1):
        body = messages_body("x", model="claude-opus-4-8", stream=stream, mock={"usage": usage})
        if stream:
            res = gw.stream_messages(body, key=t.api_key)
            status, raw = res.status, res.raw
        else:
            status, _, raw = gw.post_messages(body, key=t.api_key)
        assert status == 200, raw
    rows = gw.wait_usage({"key_id": t.key["id"]}, count=4)
    assert {(r["model"], r["upstream_model"]) for r in rows} == {
        ("claude-opus-4-8", "claude-opus-4-8")}
    # Claude Opus 4: 15 and 75 USD per million tokens
    assert {(r["input_cost_nanousd"], r["output_cost_nanousd"]) for r in rows} == {
        (15_000_000, 7_500_000)}

    # the second rule: its model's long-context prices apply over 200k input tokens
    big = {"input_tokens": 300000, "output_tokens": 1000}
    status, _, raw = gw.post_messages(
        messages_body("x", model="claude-sonnet-9-1", mock={"usage": big}), key=t.api_key)
    assert status == 200, raw
    row = gw.wait_usage({"key_id": t.key["id"]}, count=5)[0]
    assert row["model"] == "claude-sonnet-9-1"
    assert (row["input_cost_nanousd"], row["output_cost_nanousd"]) == (
        300000 * 6000, 1000 * 22500)

    # no rule matches: refused before any upstream
    status, _, raw = gw.post_messages(messages_body("x", model="claude-haiku-5-5"),
                                      key=t.api_key)
    assert status == 400, raw
    assert "claude-haiku-5-5 has no price" in json.loads(raw)["error"]["message"]
    status, _, raw = gw.post_messages(messages_body("x", model="claude-sonnet-45"),
                                      key=t.api_key)
    assert status == 400, raw

    # the rules in service, in order, as the admin API shows them
    assert gw.admin_ok("GET", "/admin/prices")["fallbacks"] == [
        {"pattern": "claude-opus-*", "model": OPUS},
        {"pattern": "claude-sonnet-?-*", "model": LONG}]

    # told once per model and process (two children), counted for every row
    assert priced_by_fallback_total(gw) == 5
    log = gw.error_log(0)
    told = [line for line in log.splitlines() if "S2A0213" in line]
    opus = [line for line in told if "model claude-opus-4-8 " in line]
    assert 1 <= len(opus) <= 2, told
    assert all("[sub2api:warn]" in line and "billed at the prices of %s" % OPUS in line
               and 'Sub2apiPriceFallback "claude-opus-*"' in line for line in opus), opus
    assert len([line for line in told if "claude-sonnet-9-1" in line]) == 1
    assert 'Sub2apiPriceFallback "claude-sonnet-?-*"' in told[-1]


def test_check_of_a_table_against_the_rules_in_service(fallbacks, tmp_path):
    """`sub2apictl prices check`: a new table that drops the model a rule
    names would fail configtest; models in use priced by a rule are fine."""
    gw = fallbacks
    t = gw.new_tenant()
    status, _, raw = gw.post_messages(messages_body("x", model="claude-opus-4-8"), key=t.api_key)
    assert status == 200, raw
    gw.wait_usage({"key_id": t.key["id"]})
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUB2API_")}
    env.update(SUB2API_URL=gw.base_url + "/admin", SUB2API_ADMIN_TOKEN=gw.admin_token)

    def check(table):
        path = tmp_path / "new.json"
        path.write_text(json.dumps(table))
        res = subprocess.run([sys.executable, str(harness.REPO / "sub2apictl"), "prices",
                              "check", str(path), "--json"], capture_output=True, text=True,
                             env=env, timeout=60)
        return res.returncode, json.loads(res.stdout)

    table = json.loads((HERE / "prices.json").read_text())
    code, rep = check(table)
    assert code == 0 and rep["valid"], rep
    used = {u["model"]: u for u in rep["usage"]["models"]}
    assert used["claude-opus-4-8"]["priced"] == "fallback"
    assert used["claude-opus-4-8"]["rule"] == {"pattern": "claude-opus-*", "model": OPUS}
    del table[OPUS]
    code, rep = check(table)
    assert code == 1 and not rep["valid"]
    assert rep["fallbacks"][0] == {"pattern": "claude-opus-*", "model": OPUS, "ok": False}
    assert rep["refused"] == ["claude-opus-4-8"]


SHIPPED = harness.REPO / "prices" / "anthropic.json"


def sample_rules():
    """The Sub2apiPriceFallback lines of httpd.conf.sample's first gateway."""
    text = (harness.REPO / "httpd.conf.sample").read_text()
    return [" ".join(line.split()) for line in text.splitlines()
            if line.strip().startswith("Sub2apiPriceFallback")]


@pytest.fixture(params=["sqlite"])
def shipped(request, mock_upstreams):
    """A gateway billing by the price table shipped with the module, with
    the fallback rules of the sample configuration and the demo."""
    yield from own_gateway(request, mock_upstreams, "s2a-shipped-", prices=SHIPPED,
                           extra_conf="\n".join(sample_rules()) + "\n")


def test_shipped_price_table(shipped):
    """The shipped table loads with nothing skipped; the demo serves what the
    sample does; Claude Code's default model is priced at its list price, a
    model of a family the table does not name yet at its newest model's,
    and long-context requests at the long-context rates (200k for Sonnet
    4.5, 100k for Haiku 5.5)."""
    gw = shipped
    demo = (harness.REPO / "demo" / "demo").read_text()
    demo_rules = [" ".join(line.split()) for line in demo.splitlines()
                  if line.startswith("Sub2apiPriceFallback")]
    assert demo_rules == sample_rules() and len(demo_rules) == 4
    prices = gw.admin_ok("GET", "/admin/prices")
    assert prices["skipped"] == 0 and prices["count"] == len(json.loads(SHIPPED.read_text()))
    res = subprocess.run([sys.executable, str(harness.REPO / "sub2apictl"), "prices", "check",
                          "--offline", str(SHIPPED)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and "skipped" not in res.stdout, res.stdout + res.stderr

    t = gw.new_tenant(balance_usd="100")
    cases = [
        # model, usage, (input, output, cache write, cache read) nano-USD
        ("claude-opus-4-8", {"input_tokens": 1000, "output_tokens": 100,
                             "cache_read_input_tokens": 2000},
         (5_000_000, 2_500_000, 0, 1_000_000)),
        # not in the table: Opus 5.5's $4 / $20, $0.20 cache reads
        ("claude-opus-6", {"input_tokens": 1000, "output_tokens": 100,
                           "cache_read_input_tokens": 2000},
         (4_000_000, 2_000_000, 0, 400_000)),
        # over 200k input tokens: $6 / $22.50, $7.50 writes
        ("claude-sonnet-4-5", {"input_tokens": 190000, "output_tokens": 1000,
                               "cache_creation_input_tokens": 10001},
         (1_140_000_000, 22_500_000, 75_007_500, 0)),
        # over 100k: $0.50 / $2.50, $0.05 cache reads; at 100k: $0.10 / $0.50
        ("claude-haiku-5-5", {"input_tokens": 50000, "output_tokens": 1000,
                              "cache_read_input_tokens": 50001},
         (25_000_000, 2_500_000, 0, 2_500_050)),
        ("claude-haiku-5-5", {"input_tokens": 50000, "output_tokens": 1000,
                              "cache_read_input_tokens": 50000},
         (5_000_000, 500_000, 0, 500_000)),
    ]
    for n, (model, usage, want) in enumerate(cases, 1):
        status, _, raw = gw.post_messages(messages_body("x", model=model, mock={"usage": usage}),
                                          key=t.api_key)
        assert status == 200, raw
        row = gw.wait_usage({"key_id": t.key["id"]}, count=n)[0]
        assert row["model"] == model
        assert (row["input_cost_nanousd"], row["output_cost_nanousd"],
                row["cache_creation_cost_nanousd"], row["cache_read_cost_nanousd"]) == want, model
