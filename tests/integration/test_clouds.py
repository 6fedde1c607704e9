"""Claude through Google Vertex AI and Amazon Bedrock accounts, in the same
pool as Anthropic's: the client calls /v1/messages as ever; the mock
upstream checks what each cloud checks (SigV4 signatures, Bedrock API keys,
service-account JWTs and the tokens they buy, paths and bodies), frames
Bedrock's stream as AWS event-stream binary, and answers errors in each
cloud's own shape."""
import base64
import json
import subprocess
import sys
import time
import urllib.parse

import pytest

import harness
from harness import messages_body

MODEL = harness.DEFAULT_MODEL  # claude-sonnet-4-20250514
BEDROCK_ID = "us.anthropic.claude-sonnet-4-20250514-v1:0"
VERTEX_ID = "claude-sonnet-4@20250514"


def upstream_calls(gw):
    return [r for r in gw.mock_requests() if r["path"] != "/google/token"]


def test_bedrock_key_pair_answers_signed_and_bills(gateway):
    gw = gateway
    t = gw.bedrock_tenant()
    status, headers, raw = gw.post_messages(
        messages_body(mock={"text": "From Bedrock.", "usage": {"input_tokens": 21,
                                                               "output_tokens": 8}},
                      metadata={"user_id": "someone"}),
        key=t.api_key, headers={"anthropic-beta": "context-1m-2025-08-07"})
    assert status == 200, raw
    answer = json.loads(raw)
    assert answer["model"] == MODEL  # the client's name, not the cloud's
    assert answer["content"][0]["text"] == "From Bedrock."
    [sent] = upstream_calls(gw)
    assert sent["path"] == "/model/%s/invoke" % urllib.parse.quote(BEDROCK_ID, safe="")
    assert sent["headers"]["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=%s/" % t.pairs[0]["access_key_id"])
    body = json.loads(sent["body"])
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in body and "stream" not in body and "metadata" not in body
    assert body["anthropic_beta"] == ["context-1m-2025-08-07"]
    assert "x-api-key" not in sent["headers"] and "anthropic-beta" not in sent["headers"]
    [row] = gw.wait_usage({"key_id": t.key["id"]})
    assert row["model"] == MODEL and row["upstream_model"] == BEDROCK_ID
    assert (row["input_tokens"], row["output_tokens"]) == (21, 8)
    assert row["account_id"] == t.account["id"] and row["actual_cost_nanousd"] > 0


def test_bedrock_stream_arrives_as_server_sent_events(gateway):
    gw = gateway
    t = gw.bedrock_tenant()
    res = gw.stream_messages(
        messages_body(mock={"text": "abcdefgh" * 8, "events": 6,
                            "usage": {"input_tokens": 30, "output_tokens": 17}}),
        key=t.api_key)
    assert res.status == 200
    assert res.headers["content-type"].startswith("text/event-stream")
    names = [n for n, _ in res.events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert names.count("content_block_delta") == 6
    start = res.events[0][1]
    assert start["message"]["model"] == MODEL
    text = "".join(d["delta"]["text"] for n, d in res.events
                   if n == "content_block_delta")
    assert text == "abcdefgh" * 8
    # nothing of the binary framing reaches the client
    assert b":event-type" not in res.raw and b":message-type" not in res.raw
    [sent] = upstream_calls(gw)
    assert sent["path"].endswith("/invoke-with-response-stream")
    assert sent["headers"]["accept"] == "application/vnd.amazon.eventstream"
    [row] = gw.wait_usage({"key_id": t.key["id"]})
    assert (row["input_tokens"], row["output_tokens"]) == (30, 17)
    assert row["stream"] and row["outcome"] == "ok"


@pytest.mark.parametrize("kind", ["api_key", "session_token"])
def test_bedrock_other_credentials(gateway, kind):
    gw = gateway
    if kind == "api_key":
        credential = harness.bedrock_api_key(gw.unique("k"))
    else:
        credential = gw.bedrock_pair(session_token="FwoGZXIvYXdzE" + gw.unique("tok"))
    t = gw.bedrock_tenant(credential=credential)
    status, _, raw = gw.post_messages(messages_body(), key=t.api_key)
    assert status == 200, raw
    [sent] = upstream_calls(gw)
    auth = sent["headers"]["authorization"]
    if kind == "api_key":
        assert auth == "Bearer " + credential
        assert t.account["credential"] != credential  # never shown whole
    else:
        assert sent["headers"]["x-amz-security-token"] == credential["session_token"]
        assert "x-amz-security-token" in auth
    gw.wait_usage({"key_id": t.key["id"]})


def test_bedrock_throttling_rests_the_account_and_fails_over(gateway):
    gw = gateway
    t = gw.bedrock_tenant(accounts=2)
    throttled = t.pairs[0]["access_key_id"]
    for _ in range(2):
        status, _, raw = gw.post_messages(
            messages_body(mock={"status_for": {throttled: 429}}), key=t.api_key)
        assert status == 200, raw
    # the throttled account rests; the other answered both
    states = {a["id"]: gw.admin_ok("GET", "/admin/accounts/%d" % a["id"])["state"]
              for a in t.accounts}
    assert sum(1 for s in states.values() if s["rate_limited_until"]) == 1, states
    rows = gw.wait_usage({"key_id": t.key["id"]}, count=2)
    assert len({r["account_id"] for r in rows}) == 1
    # when every account is throttled, the client hears Anthropic's 429
    status, headers, raw = gw.post_messages(
        messages_body(mock={"bedrock_error": "ThrottlingException"}), key=t.api_key)
    assert status == 429, raw
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"
    assert "retry-after" in headers


def test_bedrock_unavailable_is_the_anthropic_overload(gateway):
    gw = gateway
    t = gw.bedrock_tenant()
    status, headers, raw = gw.post_messages(
        messages_body(mock={"bedrock_error": "ServiceUnavailableException"}), key=t.api_key)
    # as after Anthropic's own 529: the account rests, the client may retry
    assert status == 503, raw
    assert json.loads(raw)["error"]["type"] == "overloaded_error"
    assert gw.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])["state"]["overloaded_until"]


def test_bedrock_validation_error_reaches_the_client_in_anthropic_shape(gateway):
    gw = gateway
    t = gw.bedrock_tenant()
    status, headers, raw = gw.post_messages(messages_body(mock={"status": 400}), key=t.api_key)
    assert status == 400, raw
    assert headers["content-type"].startswith("application/json")
    error = json.loads(raw)
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"]  # Bedrock's own words
    # the request was the client's fault: the account serves on
    assert gw.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])["status"] == "active"


def test_bedrock_wrong_secret_puts_the_account_in_error(gateway):
    gw = gateway
    pair = gw.bedrock_pair()
    pair["secret_access_key"] = "x" * 40
    t = gw.bedrock_tenant(credential=pair)
    status, _, raw = gw.post_messages(messages_body(), key=t.api_key)
    assert status >= 500 or status == 401, raw
    assert json.loads(raw)["type"] == "error"
    assert gw.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])["status"] == "error"
    gw.expect_error("S2A0205|S2A0207")


@pytest.mark.parametrize("fault", ["exception", "corrupt"])
def test_bedrock_stream_fault_ends_with_an_error_event_and_bills_what_came(gateway, fault):
    gw = gateway
    mock = {"events": 8, "text": "abcd" * 8, "usage": {"input_tokens": 40, "output_tokens": 90}}
    if fault == "exception":
        mock["stream_exception"] = {"after": 5, "type": "throttlingException"}
    else:
        mock["corrupt_after"] = 5
    t = gw.bedrock_tenant()
    res = gw.stream_messages(messages_body(mock=mock), key=t.api_key)
    assert res.status == 200
    names = [n for n, _ in res.events]
    assert names[0] == "message_start"
    assert names[-1] == "error", names
    error = res.events[-1][1]
    assert error["type"] == "error"
    assert error["error"]["type"] == ("rate_limit_error" if fault == "exception" else "api_error")
    assert "message_stop" not in names
    [row] = gw.wait_usage({"key_id": t.key["id"]})
    assert row["input_tokens"] == 40
    assert 0 < row["output_tokens"] < 90  # estimated from what came


def test_vertex_service_account_mints_a_token_once_and_answers(gateway):
    gw = gateway
    t = gw.vertex_tenant()
    assert t.account["credential"].startswith("service account ")
    assert "PRIVATE KEY" not in json.dumps(t.account)
    for _ in range(2):
        status, _, raw = gw.post_messages(
            messages_body(mock={"text": "From Vertex."}, metadata={"user_id": "someone"}),
            key=t.api_key)
        assert status == 200, raw
        answer = json.loads(raw)
        assert answer["model"] == MODEL and answer["content"][0]["text"] == "From Vertex."
    calls = upstream_calls(gw)
    assert len(calls) == 2
    assert calls[0]["path"] == (
        "/v1/projects/%s/locations/us-east5/publishers/anthropic/models/%s:rawPredict"
        % (t.keys[0]["project_id"], VERTEX_ID))
    body = json.loads(calls[0]["body"])
    assert body["anthropic_version"] == "vertex-2023-10-16" and "model" not in body
    assert body["metadata"]["user_id"] != "someone"  # the user's pseudonym
    tokens = [c for c in gw.mock.token_calls() if c.get("kind") == "vertex"]
    assert len(tokens) == 1 and tokens[0]["status"] == 200
    assert calls[0]["headers"]["authorization"] == calls[1]["headers"]["authorization"]
    rows = gw.wait_usage({"key_id": t.key["id"]}, count=2)
    assert {r["upstream_model"] for r in rows} == {VERTEX_ID}


def test_vertex_stream_and_a_token_near_its_end_is_made_again(gateway):
    gw = gateway
    t = gw.vertex_tenant()
    res = gw.stream_messages(messages_body(mock={"events": 3}), key=t.api_key)
    assert res.status == 200 and [n for n, _ in res.events][-1] == "message_stop"
    assert res.events[0][1]["message"]["model"] == MODEL
    # the token ends within the refresh margin: the next request makes another,
    # unless another process (a request, or the watchdog) is making it just
    # then, when the old one, still good for a minute, goes meanwhile
    gw.db_write("UPDATE s2a_accounts SET expires_at = %d WHERE id = %d"
                % (int(time.time()) + 60, t.account["id"]))
    gw.admin_ok("PATCH", "/admin/accounts/%d" % t.account["id"], {"priority": 2})
    first = upstream_calls(gw)[0]
    assert first["path"].endswith(":streamRawPredict")
    for _ in range(20):
        status, _, raw = gw.post_messages(messages_body(), key=t.api_key)
        assert status == 200, raw
        if upstream_calls(gw)[-1]["headers"]["authorization"] != first["headers"]["authorization"]:
            break
        time.sleep(0.1)
    assert upstream_calls(gw)[-1]["headers"]["authorization"] != first["headers"]["authorization"]
    assert len([c for c in gw.mock.token_calls() if c.get("kind") == "vertex"]) == 2


def test_vertex_quota_answer_rests_the_account_with_anthropic_shape(gateway):
    gw = gateway
    t = gw.vertex_tenant()
    status, headers, raw = gw.post_messages(messages_body(mock={"status": 429}), key=t.api_key)
    assert status == 429, raw
    error = json.loads(raw)
    assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
    assert "retry-after" in headers
    assert gw.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])["state"]["rate_limited_until"]


def test_count_tokens_goes_to_each_cloud(gateway):
    gw = gateway
    t = gw.vertex_tenant()
    status, _, raw = gw.post_messages({"model": MODEL, "messages": [{"role": "user",
                                                                     "content": "hi"}]},
                                      key=t.api_key, path="/v1/messages/count_tokens")
    assert status == 200, raw
    assert json.loads(raw) == {"input_tokens": 10}
    [sent] = upstream_calls(gw)
    assert sent["path"].endswith("/publishers/anthropic/models/count-tokens:rawPredict")
    assert json.loads(sent["body"])["model"] == VERTEX_ID
    # Bedrock's CountTokens: the invoke body in base64, for the foundation
    # model behind the inference profile, signed as any request
    gw.mock_clear()
    b = gw.bedrock_tenant()
    asked = {"model": MODEL, "system": "Be brief.",
             "messages": [{"role": "user", "content": "hi"}],
             "tools": [{"name": "f", "input_schema": {"type": "object"}}]}
    status, _, raw = gw.post_messages(asked, key=b.api_key, path="/v1/messages/count_tokens",
                                      headers={"anthropic-beta": "token-efficient-tools-2025-02-19"})
    assert status == 200, raw
    assert json.loads(raw) == {"input_tokens": 10}
    [sent] = upstream_calls(gw)
    assert sent["path"] == "/model/%s/count-tokens" % urllib.parse.quote(
        BEDROCK_ID[len("us."):], safe="")
    assert sent["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 ")
    wrapped = json.loads(sent["body"])
    invoke = json.loads(base64.b64decode(wrapped["input"]["invokeModel"]["body"]))
    assert invoke == {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 1,
                      "anthropic_beta": ["token-efficient-tools-2025-02-19"],
                      "system": "Be brief.", "messages": asked["messages"],
                      "tools": asked["tools"]}
    # CountTokens' own error reaches the client in the Anthropic API's shape
    refused = messages_body(mock={"bedrock_error": "ValidationException",
                                  "error_message": "The provided model doesn't support counting "
                                                   "tokens."})
    del refused["max_tokens"]
    status, _, raw = gw.post_messages(refused, key=b.api_key, path="/v1/messages/count_tokens")
    assert status == 400, raw
    assert json.loads(raw) == {"type": "error", "error": {
        "type": "invalid_request_error",
        "message": "The provided model doesn't support counting tokens."}}
    # a count is never billed
    status, _, _ = gw.post_messages(messages_body(), key=b.api_key)
    assert status == 200
    rows = gw.wait_usage({"key_id": b.key["id"]})
    assert len(rows) == 1 and rows[0]["input_tokens"] > 0


def test_cloud_accounts_in_the_admin_api(gateway):
    gw = gateway
    t = gw.bedrock_tenant()
    shown = gw.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])
    assert shown["type"] == "bedrock" and shown["region"] == "us-east-1"
    assert shown["credential"].startswith("access key AKIA") and "..." in shown["credential"]
    status, body = gw.admin("POST", "/admin/accounts", {
        "name": "v", "type": "vertex", "endpoint": gw.mock.url, "region": "us-east5",
        "credential": {"type": "service_account", "client_email": "a@b",
                       "private_key": "not a key"}})
    assert status == 400 and "private_key" in body["error"]["message"], body
    status, body = gw.admin("POST", "/admin/accounts", {
        "name": "b", "type": "bedrock", "endpoint": gw.mock.url,
        "credential": harness.bedrock_api_key("x")})
    assert status == 400 and "region" in body["error"]["message"], body


def test_openai_door_through_a_bedrock_stream(gateway):
    gw = gateway
    t = gw.bedrock_tenant()
    res = gw.stream_messages({"model": MODEL, "stream": True,
                              "messages": [{"role": "user",
                                            "content": 'mock:{"text": "Hi there", "events": 2}'}]},
                             key=t.api_key, path="/v1/chat/completions")
    assert res.status == 200
    assert res.raw.rstrip().endswith(b"data: [DONE]")
    text = ""
    for line in res.raw.decode().splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices", []):
                text += choice["delta"].get("content") or ""
    assert text == "Hi there"
    [row] = gw.wait_usage({"key_id": t.key["id"]})
    assert row["api"] == "chat"


def test_sub2apictl_adds_cloud_accounts(gateway, ctl, tmp_path):
    gw = gateway
    t = gw.new_tenant(accounts=0)
    key_file = tmp_path / "service-account.json"
    key_file.write_text(json.dumps(gw.mock.service_account(), indent=2))
    vertex = ctl.json("account", "add", "--name", gw.unique("vx"), "--type", "vertex",
                      "--credential-file", str(key_file), "--region", "us-east5",
                      "--endpoint", gw.mock.url, "--group", t.group["id"])
    assert vertex["credential"].startswith("service account ")
    akid, secret = harness.aws_test_key(gw.unique("ctl"))
    bedrock = ctl.json("account", "add", "--name", gw.unique("br"), "--type", "bedrock",
                       "--aws-env", "--region", "us-east-1", "--endpoint", gw.mock.url,
                       "--group", t.group["id"], "--priority", "99",
                       env={"AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": secret})
    assert bedrock["region"] == "us-east-1" and secret not in json.dumps(bedrock)
    out = ctl("account", "show", str(vertex["id"])).stdout
    assert "region" in out and "us-east5" in out and "token ends" in out
    # both serve: the Vertex account first, then Bedrock once it is disabled
    status, _, raw = gw.post_messages(messages_body(), key=t.api_key)
    assert status == 200, raw
    ctl("account", "disable", str(vertex["id"]))
    status, _, raw = gw.post_messages(messages_body(), key=t.api_key)
    assert status == 200, raw
    paths = [c["path"] for c in upstream_calls(gw)]
    assert paths[0].endswith(":rawPredict") and paths[1].endswith("/invoke"), paths


@pytest.mark.parametrize("cloud", ["bedrock", "vertex"])
def test_claude_code_request_shape_through_each_cloud(gateway, cloud, tmp_path):
    """A coding client's first turn (system blocks with cache_control, two
    dozen tools, metadata.user_id as JSON, its betas and session header),
    streamed, as bench/make_body.py writes it."""
    gw = gateway
    subprocess.run([sys.executable, str(harness.HERE.parent.parent / "bench" / "make_body.py"), str(tmp_path)],
                   check=True, capture_output=True)
    body = json.loads((tmp_path / "body-stream.json").read_text())
    headers = {}
    for line in (tmp_path / "headers-stream.txt").read_text().splitlines():
        name, _, value = line.partition(": ")
        if name.lower() not in ("x-api-key", "content-length", "host"):
            headers[name] = value
    t = gw.bedrock_tenant() if cloud == "bedrock" else gw.vertex_tenant()
    res = gw.stream_messages(body, key=t.api_key, headers=headers)
    assert res.status == 200, res.raw[:300]
    names = [n for n, _ in res.events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert res.events[0][1]["message"]["model"] == body["model"]
    [sent] = upstream_calls(gw)
    upstream = json.loads(sent["body"])
    assert upstream["tools"] == body["tools"] and upstream["system"] == body["system"]
    assert upstream["messages"] == body["messages"]
    if cloud == "bedrock":
        assert "metadata" not in upstream
        assert set(upstream["anthropic_beta"]) == {
            b.strip() for b in headers["anthropic-beta"].split(",")}
    else:
        assert upstream["metadata"]["user_id"] != body["metadata"]["user_id"]
        assert sent["headers"]["anthropic-beta"] == headers["anthropic-beta"]
    gw.wait_usage({"key_id": t.key["id"]})
