"""The price table: a model it lacks is refused or priced like a chosen model
(Sub2apiUnpricedModel); a graceful restart reloads it, and a file broken at
that moment leaves the table loaded before in use."""

import json
import shutil

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
    assert billed(gw, t, SONNET, 2)["input_cost_nanousd"] == 3_000_000

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
