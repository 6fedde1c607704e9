"""Streams the client leaves early are billed what the upstream charges: the
gateway reads on, sending nothing, until the upstream's own count comes in
message_delta or Sub2apiDrainTimeout passes; only then an estimate."""

import time

import pytest

from harness import messages_body

# A long thinking streamed as its summary, then a pause (pings) before the
# upstream's count of 32,000 output tokens in message_delta
THOUGHT_AT_LENGTH = {"events": 1, "text": "Done.",
                     "thinking": {"text": "Summary.", "signature": "EqQB" + "s" * 60},
                     "linger_ms": 1000, "usage": {"input_tokens": 12, "output_tokens": 32000}}


@pytest.fixture
def short_drain(gateway):
    gateway.reload("Sub2apiDrainTimeout 1")
    yield gateway
    gateway.reload("")


def wait_idle(gw, account_id, timeout=5):
    """The account carries no request any more (its place came back)."""
    deadline = time.monotonic() + timeout
    while gw.admin_ok("GET", "/admin/accounts/%d" % account_id)["state"]["in_flight"]:
        assert time.monotonic() < deadline, "the account's place stayed taken"
        time.sleep(0.05)


def test_leaving_after_the_last_block_pays_the_upstream_count(gateway, tenant):
    """Claude 4 sends its thinking summarized: the client that closes right
    after the last content_block_stop has the whole answer, and pays the
    32,000 tokens the upstream counts, not the few bytes it saw."""
    gw = gateway
    res = gw.stream_messages(
        messages_body(mock=THOUGHT_AT_LENGTH),
        key=tenant.api_key, abort_after_events=9)
    assert res.status == 200
    assert [n for n, _ in res.events][-1] == "content_block_stop"
    [row] = gw.wait_usage({"key_id": tenant.key["id"]}, timeout=10)
    assert row["outcome"] == "client_aborted"
    assert (row["input_tokens"], row["output_tokens"]) == (12, 32000)
    wait_idle(gw, tenant.account["id"])


def test_leaving_mid_generation_is_billed_within_the_drain(short_drain, tenant):
    """A long answer is not read to its end: after the drain time the
    upstream connection closes, the row is an estimate of everything that
    came (more than the client saw), and the place is back."""
    gw = short_drain
    left = time.monotonic()
    res = gw.stream_messages(
        messages_body(mock={"events": 200, "event_delay_ms": 30, "text": "abcd" * 200,
                            "usage": {"input_tokens": 7, "output_tokens": 5000}}),
        key=tenant.api_key, abort_after_events=12)
    assert res.status == 200
    seen = sum(1 for n, _ in res.events if n == "content_block_delta")
    [row] = gw.wait_usage({"key_id": tenant.key["id"]}, timeout=10)
    # the whole stream would take six seconds
    assert time.monotonic() - left < 5
    assert row["outcome"] == "client_aborted"
    assert row["input_tokens"] == 7
    # four bytes a piece, a token each: what came while draining counts too
    assert seen + 5 < row["output_tokens"] < 200, (seen, row)
    wait_idle(gw, tenant.account["id"])
    deadline = time.monotonic() + 5
    while gw.mocks[0].stats()["in_flight"]:
        assert time.monotonic() < deadline, "the upstream connection stayed open"
        time.sleep(0.05)


def test_a_silent_upstream_ends_the_drain_on_time(short_drain, tenant):
    """The upstream stops sending while the gateway drains: the drain still
    ends at its time, billing what came, and frees the place."""
    gw = short_drain
    gate = gw.unique("silent")
    res = gw.stream_messages(
        messages_body(mock={"events": 30, "event_delay_ms": 50, "text": "abcd" * 30,
                            "gate": gate, "gate_after": 15,
                            "usage": {"input_tokens": 7, "output_tokens": 900}}),
        key=tenant.api_key, abort_after_events=3)
    assert res.status == 200
    try:
        [row] = gw.wait_usage({"key_id": tenant.key["id"]}, timeout=10)
        assert row["outcome"] == "client_aborted"
        assert 0 < row["output_tokens"] <= 12, row
        wait_idle(gw, tenant.account["id"])
    finally:
        gw.mock_clear()  # the paused stream goes on into a closed connection


def test_without_a_drain_the_estimate_is_billed_at_once(gateway, tenant):
    gw = gateway
    gw.reload("Sub2apiDrainTimeout 0")
    try:
        res = gw.stream_messages(
            messages_body(mock=THOUGHT_AT_LENGTH),
            key=tenant.api_key, abort_after_events=9)
        assert res.status == 200
        [row] = gw.wait_usage({"key_id": tenant.key["id"]}, timeout=10)
        assert row["outcome"] == "client_aborted"
        # summary, signature and text: 8 + 64 + 5 bytes at four a token
        assert row["output_tokens"] == 20
    finally:
        gw.reload("")
