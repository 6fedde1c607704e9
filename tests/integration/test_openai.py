"""The OpenAI-compatible doors (/v1/chat/completions, /v1/responses) with the
official openai SDK (tests/sdk/openai.mjs) as the client: translated to
Messages requests on the same pool, answered in OpenAI's shapes, errors
typed as the SDK raises them, and billed as the same Messages request is,
under the door's name."""

import json
import shutil
import subprocess

import pytest

import harness
from harness import messages_body

SDK_DIR = harness.SDK_DIR
MODEL = "claude-sonnet-4-20250514"
CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"


@pytest.fixture(scope="session")
def openai_sdk():
    """Runs openai.mjs; installs the pinned SDKs with npm ci when missing."""
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    missing = harness.sdk_packages("openai")
    if missing:
        pytest.skip(missing)

    def run(gateway, api_key, mode, model=MODEL, prompt="Hello"):
        res = subprocess.run([node, str(SDK_DIR / "openai.mjs"), gateway.base_url + "/v1",
                              api_key, mode, model, prompt], capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL)
        lines = res.stdout.strip().splitlines()
        assert lines, "openai.mjs printed nothing (exit %d): %s" % (res.returncode, res.stderr)
        return json.loads(lines[-1])

    return run


def upstream_bodies(gateway):
    return [json.loads(r["body"]) for r in gateway.mock_requests()]


def post(gateway, path, body, key, stream=False):
    """A raw request to a door, as an OpenAI client sends it (Bearer, no
    anthropic-version)."""
    headers = {"anthropic-version": None, "x-api-key": None,
               "Authorization": "Bearer %s" % key}
    if stream:
        return gateway.stream_messages(body, headers=headers, path=path)
    return gateway.post_messages(body, headers=headers, path=path)


@pytest.mark.parametrize("mode", ["chat", "chat-stream"])
def test_chat_completion(gateway, tenant, openai_sdk, mode):
    out = openai_sdk(gateway, tenant.api_key, mode,
                     prompt='mock:{"text": "Answer from upstream.", "events": 4}')
    assert out["ok"], out
    assert out["model"] == MODEL
    assert out["text"] == "Answer from upstream."
    assert out["finish_reason"] == "stop"
    assert out["usage"]["prompt_tokens"] == 10 and out["usage"]["completion_tokens"] == 5
    assert out["usage"]["total_tokens"] == 15
    if mode == "chat-stream":
        assert out["role"] == "assistant" and out["chunks"] >= 4
    else:
        assert out["object"] == "chat.completion" and out["id"]
    sent = gateway.mock_requests()
    assert len(sent) == 1
    assert sent[0]["path"] == "/v1/messages"
    assert tenant.credential in (sent[0]["headers"].get("x-api-key"),
                                 sent[0]["headers"].get("authorization", "")[7:])
    assert tenant.api_key not in json.dumps(sent[0]["headers"])
    body = json.loads(sent[0]["body"])
    assert body["model"] == MODEL
    assert bool(body.get("stream")) == (mode == "chat-stream")
    if mode == "chat":
        assert body["system"] == [{"type": "text", "text": "Be brief."}]
        assert body["max_tokens"] == 64
    row = gateway.wait_usage({"key_id": tenant.key["id"]})[0]
    assert row["api"] == "chat"
    assert row["input_tokens"] == 10 and row["output_tokens"] == 5
    assert bool(row["stream"]) == (mode == "chat-stream")
    assert row["actual_cost_nanousd"] > 0


@pytest.mark.parametrize("streamed", [False, True])
def test_chat_tool_call_and_its_result(gateway, tenant, openai_sdk, streamed):
    out = openai_sdk(gateway, tenant.api_key, "chat-tools",
                     prompt="stream" if streamed else "plain")
    assert out["ok"], out
    first, second = out["first"], out["second"]
    assert first["finish_reason"] == "tool_calls"
    call = first["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert second["finish_reason"] == "stop" and second["text"]
    bodies = upstream_bodies(gateway)
    assert len(bodies) == 2
    assert bodies[0]["tools"][0]["name"] == "get_weather"
    assert bodies[0]["tools"][0]["input_schema"]["required"] == ["city"]
    # the call and its result meet again upstream
    assistant, result = bodies[1]["messages"][1], bodies[1]["messages"][2]
    use = [b for b in assistant["content"] if b["type"] == "tool_use"][0]
    assert use["name"] == "get_weather" and use["input"] == {"city": "Paris"}
    tool_result = [b for b in result["content"] if b["type"] == "tool_result"][0]
    assert tool_result["tool_use_id"] == use["id"]
    assert "21" in json.dumps(tool_result["content"])
    rows = gateway.wait_usage({"key_id": tenant.key["id"]}, count=2)
    assert {r["api"] for r in rows} == {"chat"}


def test_chat_tools_sent_each_turn(gateway, tenant):
    """A session's client sends the same tools every turn, which a child
    translates once: every turn's upstream body carries the same tools,
    and an array differing in one byte, of the same length, its own."""
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "The weather of a city.\nOne call per city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]
    other = json.loads(json.dumps(tools))
    other[0]["function"]["name"] = "get_weathex"
    sent = [other if turn == 3 else tools for turn in range(7)]
    for turn, offered in enumerate(sent):
        status, _, raw = post(gateway, CHAT, {
            "model": MODEL, "tools": offered,
            "messages": [{"role": "user", "content": "turn %d" % turn}]}, tenant.api_key)
        assert status == 200, raw
    bodies = upstream_bodies(gateway)
    assert [b["messages"][0]["content"] for b in bodies] == [
        [{"type": "text", "text": "turn %d" % turn}] for turn in range(7)]
    want = {"name": "get_weather", "description": "The weather of a city.\nOne call per city.",
            "input_schema": tools[0]["function"]["parameters"]}
    assert [b["tools"] for b in bodies] == [
        [dict(want, name=o[0]["function"]["name"])] for o in sent]


def test_chat_image_part(gateway, tenant, openai_sdk):
    out = openai_sdk(gateway, tenant.api_key, "chat-image", prompt="What is this?")
    assert out["ok"], out
    content = upstream_bodies(gateway)[0]["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "What is this?"}
    assert content[1]["type"] == "image"
    assert content[1]["source"]["type"] == "base64"
    assert content[1]["source"]["media_type"] == "image/png"
    assert content[1]["source"]["data"].startswith("iVBORw0KGgo")


def test_chat_what_messages_cannot_do_is_refused(gateway, tenant, openai_sdk):
    out = openai_sdk(gateway, tenant.api_key, "chat-n")
    assert not out["ok"]
    assert out["status"] == 400 and out["errorClass"] == "BadRequestError"
    assert out["errorType"] == "invalid_request_error" and out["errorParam"] == "n"
    assert "n" in out["message"]
    assert gateway.mock_requests() == []
    rows = gateway.admin_ok("GET", "/admin/usage?key_id=%d" % tenant.key["id"])["data"]
    assert rows == []


def test_typed_errors(gateway, tenant, openai_sdk):
    out = openai_sdk(gateway, "sk-not-a-key-of-this-gateway", "chat")
    assert out["status"] == 401 and out["errorClass"] == "AuthenticationError"
    assert out["errorCode"] == "invalid_api_key"
    # the upstream's own error keeps its words, typed for the SDK
    out = openai_sdk(gateway, tenant.api_key, "chat", prompt="mock:" + json.dumps(
        {"status": 400, "error_message": "prompt is too long: 300000 tokens > 200000 maximum"}))
    assert out["status"] == 400 and out["errorClass"] == "BadRequestError", out
    assert out["errorCode"] == "context_length_exceeded"
    assert "prompt is too long" in out["message"]
    # a limit of the gateway's own
    limited = gateway.new_tenant()
    gateway.admin_ok("PATCH", "/admin/keys/%d" % limited.key["id"], {"rpm_limit": 1})
    assert openai_sdk(gateway, limited.api_key, "chat")["ok"]
    out = openai_sdk(gateway, limited.api_key, "chat-stream")
    assert out["status"] == 429 and out["errorClass"] == "RateLimitError", out
    assert out["errorCode"] == "rate_limit_exceeded"


def test_errors_httpd_meets_are_openai_shaped(gateway, tenant):
    status, headers, raw = post(gateway, CHAT, b"{not json", tenant.api_key)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    status, _, raw = gateway.get(CHAT, key=tenant.api_key)
    assert status == 405
    assert set(json.loads(raw)["error"]) == {"message", "type", "param", "code"}
    assert gateway.mock_requests() == []


@pytest.mark.parametrize("mode", ["responses", "responses-stream"])
def test_response(gateway, tenant, openai_sdk, mode):
    out = openai_sdk(gateway, tenant.api_key, mode,
                     prompt='mock:{"text": "Answer from upstream.", "events": 4}')
    assert out["ok"], out
    assert out["status"] == "completed"
    assert out["model"] == MODEL
    assert out["usage"]["input_tokens"] == 10 and out["usage"]["output_tokens"] == 5
    if mode == "responses":
        assert out["object"] == "response" and out["text"] == "Answer from upstream."
        body = upstream_bodies(gateway)[0]
        assert body["system"] == [{"type": "text", "text": "Be brief."}]
        assert body["max_tokens"] == 64
    else:
        assert out["text"] == out["output_text"] == "Answer from upstream."
        assert out["types"][0] == "response.created"
        assert "response.output_text.delta" in out["types"]
        assert out["types"][-1] == "response.completed"
    row = gateway.wait_usage({"key_id": tenant.key["id"]})[0]
    assert row["api"] == "responses"
    assert row["input_tokens"] == 10 and row["output_tokens"] == 5


def test_response_function_call_and_its_output(gateway, tenant, openai_sdk):
    out = openai_sdk(gateway, tenant.api_key, "responses-tools")
    assert out["ok"], out
    call = [i for i in out["first"]["output"] if i["type"] == "function_call"][0]
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Oslo"}
    assert out["second"]["status"] == "completed" and out["second"]["text"]
    body = upstream_bodies(gateway)[1]
    use = [b for b in body["messages"][1]["content"] if b["type"] == "tool_use"][0]
    result = [b for b in body["messages"][2]["content"] if b["type"] == "tool_result"][0]
    assert result["tool_use_id"] == use["id"] and use["input"] == {"city": "Oslo"}


def test_response_tools_sent_each_turn(gateway, tenant):
    """Codex sends its tools, a free-form one among them, every turn: each
    turn's upstream body carries them, and the free-form tool's call comes
    back as a custom_tool_call whether the child translated the array then
    or before."""
    tools = [{"type": "function", "name": "shell", "description": "Runs a command.",
              "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
             {"type": "custom", "name": "apply_patch", "description": "Edits files."}]
    call = 'mock:{"tool_use": {"name": "apply_patch", "input": {"input": "*** Begin Patch"}}}'
    for turn in range(4):
        status, _, raw = post(gateway, RESPONSES, {"model": MODEL, "tools": tools,
                                                   "input": call}, tenant.api_key)
        assert status == 200, raw
        items = [i for i in json.loads(raw)["output"] if i["type"] != "message"]
        assert [(i["type"], i["name"], i["input"]) for i in items] == [
            ("custom_tool_call", "apply_patch", "*** Begin Patch")], turn
    bodies = upstream_bodies(gateway)
    assert len(bodies) == 4
    assert all(b["tools"] == bodies[0]["tools"] for b in bodies)
    assert [t["name"] for t in bodies[0]["tools"]] == ["shell", "apply_patch"]


@pytest.mark.parametrize("field", [{"store": True}, {"previous_response_id": "resp_1"}])
def test_responses_keeps_no_conversation(gateway, tenant, field):
    body = dict({"model": MODEL, "input": "Hello"}, **field)
    status, _, raw = post(gateway, RESPONSES, body, tenant.api_key)
    assert status == 400
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == next(iter(field))
    assert gateway.mock_requests() == []


def test_models_in_both_forms(gateway, tenant, openai_sdk):
    out = openai_sdk(gateway, tenant.api_key, "models")
    assert out["ok"], out
    assert MODEL in [m["id"] for m in out["ids"]]
    entry = [m for m in out["ids"] if m["id"] == MODEL][0]
    assert entry["object"] == "model" and entry["owned_by"] == "anthropic"
    assert entry["created"] == 1747180800  # 2025-05-14
    assert out["retrieved"]["id"] == MODEL and out["retrieved"]["object"] == "model"
    # Anthropic's fields beside them
    status, _, raw = gateway.get("/v1/models", key=tenant.api_key)
    page = json.loads(raw)
    assert status == 200 and page["object"] == "list" and "has_more" in page
    assert {"type", "display_name", "created_at"} <= set(page["data"][0])


def test_a_door_bills_as_messages_does(gateway):
    usage = {"input_tokens": 1234, "output_tokens": 321, "cache_read_input_tokens": 50}
    t = gateway.new_tenant()
    status, _, raw = gateway.post_messages(messages_body(mock={"usage": usage}),
                                           key=t.api_key)
    assert status == 200, raw
    status, _, raw = post(gateway, CHAT, {
        "model": harness.DEFAULT_MODEL,
        "messages": [{"role": "user", "content": "mock:" + json.dumps({"usage": usage})}]},
        t.api_key)
    assert status == 200, raw
    assert json.loads(raw)["usage"]["prompt_tokens"] == 1234 + 50
    assert json.loads(raw)["usage"]["prompt_tokens_details"]["cached_tokens"] == 50
    rows = gateway.wait_usage({"key_id": t.key["id"]}, count=2)
    by_api = {r["api"]: r for r in rows}
    assert set(by_api) == {"messages", "chat"}
    assert by_api["chat"]["actual_cost_nanousd"] == by_api["messages"]["actual_cost_nanousd"]
    assert by_api["chat"]["cache_read_tokens"] == 50
    summary = gateway.admin_ok("GET", "/admin/usage/summary?by=api&key_id=%d" % t.key["id"])
    assert sorted(r["api"] for r in summary["data"]) == ["chat", "messages"]
    only = gateway.admin_ok("GET", "/admin/usage?api=chat&key_id=%d" % t.key["id"])["data"]
    assert [r["api"] for r in only] == ["chat"]


def test_waiting_chat_stream_gets_comment_pings(gateway):
    t = gateway.new_tenant(accounts=1, concurrency=1)
    slow = gateway.hold_account(t, 2500)
    res = post(gateway, CHAT, {
        "model": harness.DEFAULT_MODEL, "stream": True,
        "messages": [{"role": "user", "content": "waiting"}]}, t.api_key, stream=True)
    assert slow.result()[0] == 200
    assert res.status == 200
    records = [r for r in res.raw.decode().split("\n\n") if r]
    # pings an SSE reader skips, then the chunks, then [DONE]; no Anthropic event
    assert records[0] == ": ping"
    assert "event:" not in res.raw.decode()
    data = [r[6:] for r in records if r.startswith("data: ")]
    assert data[-1] == "[DONE]"
    assert json.loads(data[0])["object"] == "chat.completion.chunk"
