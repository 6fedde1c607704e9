"""The official Anthropic TypeScript SDK against the gateway (tests/sdk/client.mjs)."""

import json
import secrets
import shutil
import subprocess
import time

import pytest

import harness

SDK_DIR = harness.SDK_DIR
MODEL = "claude-sonnet-4-20250514"


@pytest.fixture(scope="session")
def sdk():
    """Runs client.mjs; installs the pinned SDK with npm ci when it is missing."""
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    missing = harness.sdk_packages("@anthropic-ai/sdk")
    if missing:
        pytest.skip(missing)

    def run(base_url, api_key, mode, model=MODEL, prompt="Hello"):
        res = subprocess.run([node, str(SDK_DIR / "client.mjs"), base_url, api_key, mode, model,
                              prompt], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
        lines = res.stdout.strip().splitlines()
        assert lines, "client.mjs printed nothing (exit %d): %s" % (res.returncode, res.stderr)
        return json.loads(lines[-1])

    return run


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_sdk_request(gateway, tenant, sdk, mode):
    out = sdk(gateway.base_url, tenant.api_key, mode,
              prompt='mock:{"text": "Answer from upstream.", "events": 4}')
    assert out["ok"], out
    assert out["model"] == MODEL
    assert out["text"] == "Answer from upstream."
    assert out["usage"]["input_tokens"] == 10 and out["usage"]["output_tokens"] == 5
    upstream = gateway.mock_requests()
    assert len(upstream) == 1
    sent = upstream[0]["headers"]
    assert tenant.credential in (sent.get("x-api-key"), sent.get("authorization", "")[7:])
    assert tenant.api_key not in json.dumps(sent)
    assert json.loads(upstream[0]["body"])["model"] == MODEL
    row = gateway.wait_usage({"key_id": tenant.key["id"]})[0]
    assert row["model"] == MODEL and row["account_id"] == tenant.account["id"]
    assert row["input_tokens"] == 10 and row["output_tokens"] == 5
    assert bool(row["stream"]) == (mode == "stream")
    assert row["actual_cost_nanousd"] > 0


@pytest.mark.parametrize("cloud", ["bedrock", "vertex"])
@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_sdk_through_a_cloud_account(gateway, sdk, mode, cloud):
    """The SDK cannot tell a Vertex or Bedrock account from Anthropic's."""
    t = gateway.bedrock_tenant() if cloud == "bedrock" else gateway.vertex_tenant()
    out = sdk(gateway.base_url, t.api_key, mode,
              prompt='mock:{"text": "Answer from the cloud.", "events": 4}')
    assert out["ok"], out
    assert out["model"] == MODEL and out["text"] == "Answer from the cloud."
    assert out["usage"]["input_tokens"] == 10 and out["usage"]["output_tokens"] == 5
    row = gateway.wait_usage({"key_id": t.key["id"]})[0]
    assert row["model"] == MODEL and row["upstream_model"] != MODEL
    assert row["account_id"] == t.account["id"] and bool(row["stream"]) == (mode == "stream")


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_sdk_sees_requested_model_when_mapped(gateway, sdk, mode):
    upstream_model = "claude-3-5-haiku-20241022"
    t = gateway.new_tenant(model_mapping={MODEL: upstream_model})
    out = sdk(gateway.base_url, t.api_key, mode)
    assert out["ok"], out
    assert out["model"] == MODEL
    assert json.loads(gateway.mock_requests()[0]["body"])["model"] == upstream_model
    row = gateway.wait_usage({"key_id": t.key["id"]})[0]
    assert row["model"] == MODEL and row["upstream_model"] == upstream_model


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_sdk_rejected_keys(gateway, tenant, sdk, mode):
    status, body = gateway.admin("PATCH", "/admin/keys/%s" % tenant.key["id"],
                                 {"status": "disabled"})
    assert status == 200, body
    for key in (tenant.api_key, "sk-s2a-" + secrets.token_hex(24)):
        out = sdk(gateway.base_url, key, mode)
        assert not out["ok"], out
        assert out["status"] == 401 and out["errorClass"] == "AuthenticationError", out
        assert out["errorType"] == "authentication_error"
    assert gateway.mock_requests() == []


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_sdk_exhausted_balance(gateway, sdk, mode):
    t = gateway.new_tenant(balance_usd="0")
    out = sdk(gateway.base_url, t.api_key, mode)
    assert not out["ok"], out
    assert out["status"] == 402 and out["errorType"] == "billing_error", out
    assert out["errorClass"] == "PaymentRequiredError"
    assert gateway.mock_requests() == []


def test_sdk_stream_that_waited_with_pings(gateway, sdk):
    """Pings before message_start (sent while the request waited for a
    place) are what the SDK expects of a stream."""
    t = gateway.new_tenant(accounts=1, concurrency=1)
    key = t.api_key
    slow = gateway.hold_account(t, 2500)
    out = sdk(gateway.base_url, key, "stream",
              prompt='mock:{"text": "After the wait.", "events": 3}')
    assert slow.result()[0] == 200
    assert out["ok"], out
    assert out["text"] == "After the wait."


def test_sdk_count_tokens(gateway, sdk):
    """countTokens goes to an account of the key's group with the mapped
    model and nothing the endpoint refuses; it takes no place (the only
    account is busy at its concurrency of 1), costs nothing, writes no row."""
    upstream_model = "claude-3-5-haiku-20241022"
    t = gateway.new_tenant(balance_usd="0.001", concurrency=1,
                           model_mapping={MODEL: upstream_model})
    slow = gateway.hold_account(t, 1500)
    out = sdk(gateway.base_url, t.api_key, "count", prompt='mock:{"usage": {"input_tokens": 321}}')
    assert out == {"ok": True, "input_tokens": 321}, out
    assert slow.result()[0] == 200
    counted = [r for r in gateway.mock_requests() if r["path"].endswith("/count_tokens")]
    assert len(counted) == 1
    sent = json.loads(counted[0]["body"])
    assert sent["model"] == upstream_model and "metadata" not in sent
    assert t.credential == counted[0]["headers"].get("x-api-key")
    gateway.wait_usage({"key_id": t.key["id"]})
    time.sleep(0.3)  # a row the count wrongly queued would be written by now
    assert len(gateway.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"]) == 1
    user = gateway.admin_ok("GET", "/admin/users/%d" % t.user["id"])
    assert user["balance_nanousd"] == 1_000_000 - gateway.wait_usage(
        {"key_id": t.key["id"]})[0]["actual_cost_nanousd"]


def test_sdk_models(gateway, sdk):
    """models.list pages through what the key's group serves (newest first);
    models.retrieve finds one, and a model outside the group is not found."""
    t = gateway.new_tenant(model_mapping={"claude-sonnet-4-5-20250929": MODEL,
                                          "claude-3-5-haiku-20241022": MODEL,
                                          "my-team-model": MODEL})
    out = sdk(gateway.base_url, t.api_key, "models", model="claude-3-5-haiku-20241022")
    assert out["ok"], out
    assert out["ids"] == ["claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022",
                          "my-team-model"]
    assert out["retrieved"] == {"type": "model", "id": "claude-3-5-haiku-20241022",
                                "display_name": "Claude 3.5 Haiku",
                                "created_at": "2024-10-22T00:00:00Z",
                                # OpenAI's fields beside (test_openai.py)
                                "object": "model", "created": 1729555200,
                                "owned_by": "anthropic"}
    out = sdk(gateway.base_url, t.api_key, "models", model="claude-opus-4-20250514")
    assert not out["ok"] and out["status"] == 404 and out["errorType"] == "not_found_error"
    # an account serving every model offers the price table's Anthropic models
    every = gateway.new_tenant()
    out = sdk(gateway.base_url, every.api_key, "models", model=MODEL)
    assert out["ok"], out
    assert out["ids"] == ["claude-sonnet-4-5-20250929", "claude-opus-4-20250514",
                          "claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"]
    assert gateway.mock_requests() == []
