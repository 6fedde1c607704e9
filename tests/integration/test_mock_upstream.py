"""The mock upstream itself: wire format, control options, recording, and that
it works behind a plain mod_proxy (no gateway module)."""

import http.client
import json
import shutil

import pytest

import harness


@pytest.fixture
def mock(mock_upstreams):
    m = mock_upstreams[0]
    m.clear()
    return m


def post(conn, body, key="sk-ant-test"):
    hdrs = {"Content-Type": "application/json", "anthropic-version": harness.ANTHROPIC_VERSION,
            "x-api-key": key}
    conn.request("POST", "/v1/messages?beta=true", body=json.dumps(body), headers=hdrs)
    resp = conn.getresponse()
    return resp, resp.read()


def test_json_answer_keepalive_and_recording(mock):
    conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=10)
    resp, raw = post(conn, harness.messages_body(model="claude-3-5-haiku-20241022"))
    msg = json.loads(raw)
    assert resp.status == 200 and resp.getheader("Content-Length") == str(len(raw))
    assert resp.getheader("anthropic-organization-id") and resp.getheader("request-id")
    assert msg["model"] == "claude-3-5-haiku-20241022" and msg["stop_reason"] == "end_turn"
    assert msg["usage"]["input_tokens"] == 10 and msg["usage"]["output_tokens"] == 5
    usage = {"input_tokens": 7, "cache_read_input_tokens": 3,
             "cache_creation": {"ephemeral_5m_input_tokens": 2, "ephemeral_1h_input_tokens": 4}}
    resp, raw = post(conn, harness.messages_body(mock={"usage": usage, "text": "hi"}))
    msg = json.loads(raw)
    assert msg["content"] == [{"type": "text", "text": "hi"}]
    assert msg["usage"]["cache_creation_input_tokens"] == 6
    assert msg["usage"]["cache_read_input_tokens"] == 3
    conn.close()
    recorded = mock.requests()
    assert [r["path"] for r in recorded] == ["/v1/messages?beta=true"] * 2
    assert recorded[0]["headers"]["x-api-key"] == "sk-ant-test"
    assert json.loads(recorded[0]["body"])["model"] == "claude-3-5-haiku-20241022"
    mock.clear()
    assert mock.requests() == []


def test_stream_event_sequence(mock):
    body = harness.messages_body(stream=True, mock={"events": 4, "text": "abcdefgh",
                                                    "usage": {"output_tokens": 9}})
    status, headers, raw = harness.http_request(
        mock.port, "POST", "/v1/messages", body,
        {"x-api-key": "k", "anthropic-version": harness.ANTHROPIC_VERSION})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = harness.parse_sse(raw)
    assert [n for n, _ in events] == (["message_start", "content_block_start", "ping"]
                                      + ["content_block_delta"] * 4
                                      + ["content_block_stop", "message_delta", "message_stop"])
    assert all(d["type"] == n for n, d in events)
    assert events[0][1]["message"]["usage"]["output_tokens"] == 1
    assert events[-2][1]["usage"]["output_tokens"] == 9
    assert harness.sse_text(events) == "abcdefgh"


def test_stream_with_thinking_and_a_lingering_end(mock):
    body = harness.messages_body(stream=True, mock={
        "events": 1, "text": "ok", "thinking": {"text": "Summary.", "signature": "EqQBsig"},
        "linger_ms": 300, "usage": {"output_tokens": 32000}})
    status, _, raw = harness.http_request(
        mock.port, "POST", "/v1/messages", body,
        {"x-api-key": "k", "anthropic-version": harness.ANTHROPIC_VERSION})
    assert status == 200
    events = harness.parse_sse(raw)
    assert [n for n, _ in events] == (["message_start", "content_block_start"]
                                      + ["content_block_delta"] * 2
                                      + ["content_block_stop", "content_block_start", "ping",
                                         "content_block_delta", "content_block_stop"]
                                      + ["ping"] * 3 + ["message_delta", "message_stop"])
    assert events[1][1]["content_block"]["type"] == "thinking"
    assert events[2][1]["delta"] == {"type": "thinking_delta", "thinking": "Summary."}
    assert events[3][1]["delta"] == {"type": "signature_delta", "signature": "EqQBsig"}
    assert events[5][1]["index"] == 1 and events[7][1]["index"] == 1
    assert events[-2][1]["usage"]["output_tokens"] == 32000


def test_errors_and_cut_connection(mock):
    hdrs = {"x-api-key": "sk-ant-invalid", "anthropic-version": harness.ANTHROPIC_VERSION}
    status, _, raw = harness.http_request(mock.port, "POST", "/v1/messages",
                                          harness.messages_body(), hdrs)
    assert status == 401 and json.loads(raw)["error"]["type"] == "authentication_error"
    hdrs["x-api-key"] = "k"
    status, headers, raw = harness.http_request(
        mock.port, "POST", "/v1/messages",
        harness.messages_body(mock={"status": 429, "headers": {"retry-after": "7"}}), hdrs)
    assert status == 429 and headers["retry-after"] == "7"
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"
    with pytest.raises(http.client.IncompleteRead):
        harness.http_request(mock.port, "POST", "/v1/messages",
                             harness.messages_body(stream=True, mock={"cut_after": 2}), hdrs)


def test_stream_through_plain_proxy(mock):
    root = harness.new_root("s2a-plain-")
    httpd = harness.Httpd(root, [mock.url], plain=True).start()
    try:
        body = harness.messages_body(stream=True, mock={"events": 3, "event_delay_ms": 200})
        status, headers, raw = harness.http_request(
            httpd.port, "POST", "/v1/messages", body,
            {"x-api-key": "k", "anthropic-version": harness.ANTHROPIC_VERSION})
        assert status == 200 and headers["content-type"].startswith("text/event-stream")
        assert harness.parse_sse(raw)[-1][0] == "message_stop"
        assert mock.requests()[0]["path"] == "/v1/messages"
    finally:
        httpd.stop()
    log = httpd.error_log.read_text()
    shutil.rmtree(root)
    assert not [line for line in log.splitlines()
                if harness.LEVEL_RE.search(line) or harness.CRASH_RE.search(line)], log
