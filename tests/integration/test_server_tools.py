"""Server tools: web searches are billed per use at the price table's rate
(search_context_cost_per_query), in a column of their own and in the total;
a tool without a price, or a group that refuses server tools, is refused
before anything reaches the upstream."""

import json
import time

from harness import messages_body

SONNET = "claude-sonnet-4-20250514"  # priced per search in tests/integration/prices.json
HAIKU = "claude-3-5-haiku-20241022"  # not
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
WEB_FETCH = {"type": "web_fetch_20250910", "name": "web_fetch"}
USAGE = {"input_tokens": 1000, "output_tokens": 100,
         "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 1}}
TOKENS = 1000 * 3000 + 100 * 15000  # nano-USD of the tokens at Sonnet's prices
SEARCHES = 3 * 10_000_000           # $0.01 a search


def body_with(model, tools, stream=False):
    body = messages_body("look it up", model=model, stream=stream, mock={"usage": USAGE})
    body["tools"] = tools
    return body


def error_of(raw):
    body = json.loads(raw)
    return body["error"]["type"], body["error"]["message"]


def test_web_searches_are_billed_per_use(gateway, ctl):
    gw = gateway
    t = gw.new_tenant(rate_multiplier="2")
    for stream in (False, True):
        body = body_with(SONNET, [WEB_SEARCH, WEB_FETCH], stream=stream)
        if stream:
            res = gw.stream_messages(body, key=t.api_key)
            assert res.status == 200
            assert res.events[-2][1]["usage"]["server_tool_use"]["web_search_requests"] == 3
        else:
            status, _, raw = gw.post_messages(body, key=t.api_key)
            assert status == 200, raw
    rows = gw.wait_usage({"key_id": t.key["id"]}, count=2)
    for row in rows:
        assert (row["web_search_requests"], row["web_fetch_requests"]) == (3, 1)
        assert row["server_tool_cost_nanousd"] == SEARCHES
        assert row["total_cost_nanousd"] == TOKENS + SEARCHES
        assert row["actual_cost_nanousd"] == 2 * (TOKENS + SEARCHES)
    sent = json.loads(gw.mock_requests()[0]["body"])
    assert sent["tools"] == [WEB_SEARCH, WEB_FETCH]
    summary = gw.admin_ok("GET", "/admin/usage/summary?by=model&key_id=%d" % t.key["id"])
    [line] = summary["data"]
    assert line["web_search_requests"] == 6 and line["server_tool_cost_nanousd"] == 2 * SEARCHES
    time.sleep(0.3)
    text = ctl("usage", "--key", t.key["id"]).stdout
    assert "0.03 (3 searches)" in text
    text = ctl("usage", "summary", "--by", "model", "--key", t.key["id"]).stdout
    assert "0.06 (6 searches)" in text


def test_unpriced_or_refused_tools_never_reach_the_upstream(gateway):
    gw = gateway
    t = gw.new_tenant()
    gw.mock_clear()
    status, _, raw = gw.post_messages(body_with(HAIKU, [WEB_SEARCH]), key=t.api_key)
    assert status == 400, raw
    assert error_of(raw) == ("invalid_request_error",
                             "tools: web_search has no price on this gateway for this model")
    code = {"type": "code_execution_20250825", "name": "code_execution"}
    status, _, raw = gw.post_messages(body_with(SONNET, [code]), key=t.api_key)
    assert status == 400 and "code_execution" in error_of(raw)[1], raw
    # web fetch costs tokens only: served on a model without a search price
    status, _, raw = gw.post_messages(body_with(HAIKU, [WEB_FETCH]), key=t.api_key)
    assert status == 200, raw
    assert len(gw.mock_requests()) == 1
    # a group that refuses server tools
    group = gw.admin_ok("PATCH", "/admin/groups/%d" % t.group["id"], {"server_tools": False})
    assert group["server_tools"] is False
    status, _, raw = gw.post_messages(body_with(SONNET, [WEB_SEARCH]), key=t.api_key)
    assert status == 403, raw
    assert error_of(raw)[0] == "permission_error" and "Server tools" in error_of(raw)[1]
    # ordinary tools still go
    client_tool = {"name": "get_weather", "input_schema": {"type": "object"}}
    status, _, raw = gw.post_messages(body_with(SONNET, [client_tool]), key=t.api_key)
    assert status == 200, raw
    # counting tokens runs no tool
    body = body_with(HAIKU, [WEB_SEARCH])
    del body["max_tokens"]
    status, _, raw = gw.post_messages(body, key=t.api_key, path="/v1/messages/count_tokens")
    assert status == 200, raw
