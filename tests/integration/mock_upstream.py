#!/usr/bin/env python3
"""Stand-in for the Anthropic Messages API used as the gateway's upstream.

Run: mock_upstream.py --port N   (N = 0 picks a free port; the chosen port is
printed as "PORT <n>" on stdout once the server accepts connections).
--idle-timeout S closes a kept-alive connection that waits S seconds for its
next request, as real servers do (default: kept until the client closes it).
--tls-cert F --tls-key K serve HTTPS (as the real token endpoint does).
Each connection has a thread of its own: a thousand streams at once are a
thousand threads.

Behaviour is steered by the request body, because the gateway forwards only
known headers: when the text of the last user message starts with "mock:",
the rest is a JSON object of options:
  status          answer with this HTTP status and an Anthropic error body
  status_for      {credential: status}: a status for requests made with that credential
  error_type      override the error type of that body
  error_message   override its message
  headers         extra response headers (dict)
  usage           overrides of the usage numbers; may hold cache_creation
                  {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens} and
                  server_tool_use {web_search_requests, web_fetch_requests}
                  (a stream reports those in its last message_delta)
  delta_usage     extra fields merged into the usage of message_delta
  events          number of text deltas in a stream (default 3)
  delay_ms        pause before answering
  body_delay_ms   pause between a JSON answer's headers and its body
  event_delay_ms  pause between stream events
  cut_after       close the connection abruptly after this many stream events
  thinking        a stream begins with a thinking block, as Claude 4 models send
                  it: {"text": the summarized thinking, "signature": ...}
  linger_ms       a stream pauses this long before message_delta, sending a ping
                  every 100 ms meanwhile (the upstream still counting)
  hang_up_for     [credential, ...]: requests made with these get no answer at
                  all: the connection is closed once the request was read
  gate            name of a gate that holds the answer until it is opened: a
                  stream pauses after `gate_after` events (default 1), a JSON
                  answer before it is sent (a gate closed for 300 s cuts it)
  text            the answer text
  tool_use        the answer ends with a call of a tool, after its text:
                  {"name": ..., "input": {...}} (stop_reason tool_use; a
                  stream sends the input as two input_json_delta pieces)

Control endpoints: GET /_mock/health, GET|DELETE /_mock/requests (the recorded
requests), GET /_mock/stats (in-flight counters; reset by DELETE /_mock/requests),
GET /_mock/token_calls (calls of the OAuth token endpoint, also reset by DELETE
/_mock/requests), GET /_mock/gates/<name> ({"waiting": streams paused at the
gate, "open": ...}) and POST /_mock/gates/<name> (open it: paused streams go on,
later ones pass; DELETE /_mock/requests forgets all gates, letting
their streams go on).

OAuth token endpoint: POST /v1/oauth/token with {"grant_type": "refresh_token",
"refresh_token": "sk-ant-ort01-...", "client_id": ...} answers after 300 ms with a
new access token, a new refresh token and expires_in 28800; a refresh token works
once (it rotates, as Anthropic's do), a used or malformed one gets 400
invalid_grant, one containing "unavailable" gets 503 (the endpoint down). Its
calls are kept apart from the API requests.
"""

import argparse
import json
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

DEFAULT_TEXT = "Hello from the mock upstream."
ORGANIZATION_ID = "6f1c2a4e-0b7d-4c55-9d1e-6a0f5e8b2c31"
INVALID_KEY = "sk-ant-invalid"
# what the count_tokens endpoint takes; anything else is refused, as upstream
COUNT_TOKENS_FIELDS = {"model", "messages", "system", "tools", "tool_choice", "thinking",
                       "mcp_servers"}
# longest pause of a stream at a closed gate
GATE_WAIT = 300

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

ERROR_MESSAGES = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}


class Recorder:
    """Requests seen on the API paths plus in-flight counters, shared by all threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.in_flight_by_key = {}
        self.max_in_flight_by_key = {}
        self.token_calls = []
        self.used_refresh_tokens = set()
        self.issued = 0
        self.gates = {}  # name -> {"open": threading.Event, "waiting": int}

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)

    def clear(self):
        with self.lock:
            self.requests = []
            self.token_calls = []
            for gate in self.gates.values():
                gate["open"].set()  # nothing stays paused at a forgotten gate
            self.gates = {}
            self.max_in_flight = self.in_flight
            self.max_in_flight_by_key = dict(self.in_flight_by_key)

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def stats(self):
        with self.lock:
            return {
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "in_flight_by_key": dict(self.in_flight_by_key),
                "max_in_flight_by_key": dict(self.max_in_flight_by_key),
            }

    def gate(self, name):
        with self.lock:
            return self.gates.setdefault(name, {"open": threading.Event(), "waiting": 0})

    def pass_gate(self, name):
        """Pause until the gate is open; False when it stayed closed too long."""
        gate = self.gate(name)
        with self.lock:
            gate["waiting"] += 1
        try:
            return gate["open"].wait(GATE_WAIT)
        finally:
            with self.lock:
                gate["waiting"] -= 1

    def enter(self, key):
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            n = self.in_flight_by_key.get(key, 0) + 1
            self.in_flight_by_key[key] = n
            self.max_in_flight_by_key[key] = max(self.max_in_flight_by_key.get(key, 0), n)

    def leave(self, key):
        with self.lock:
            self.in_flight -= 1
            n = self.in_flight_by_key.get(key, 1) - 1
            if n:
                self.in_flight_by_key[key] = n
            else:
                self.in_flight_by_key.pop(key, None)


class ConnectionCut(Exception):
    """The handler dropped the connection on purpose."""


def new_id(prefix):
    return prefix + uuid.uuid4().hex[:24]


def last_user_text(payload):
    """Text of the last user message, or "" when there is none."""
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return ""
    for msg in reversed(messages):
        if not isinstance(msg, dict) or msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
            )
        return ""
    return ""


def parse_options(payload):
    text = last_user_text(payload).lstrip()
    if not text.startswith("mock:"):
        return {}
    opts = json.loads(text[len("mock:"):])
    if not isinstance(opts, dict):
        raise ValueError("mock options must be a JSON object")
    return opts


def build_usage(overrides):
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 5,
    }
    overrides = dict(overrides or {})
    cache_creation = overrides.pop("cache_creation", None)
    usage.update(overrides)
    if cache_creation is not None:
        cache_creation = {
            "ephemeral_5m_input_tokens": int(cache_creation.get("ephemeral_5m_input_tokens", 0)),
            "ephemeral_1h_input_tokens": int(cache_creation.get("ephemeral_1h_input_tokens", 0)),
        }
        if "cache_creation_input_tokens" not in overrides:
            usage["cache_creation_input_tokens"] = sum(cache_creation.values())
    else:
        cache_creation = {
            "ephemeral_5m_input_tokens": usage["cache_creation_input_tokens"],
            "ephemeral_1h_input_tokens": 0,
        }
    usage["cache_creation"] = cache_creation
    usage["service_tier"] = "standard"
    return usage


def split_text(text, parts):
    n = len(text)
    return [text[i * n // parts:(i + 1) * n // parts] for i in range(parts)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-anthropic"
    sys_version = ""

    def log_message(self, format, *args):
        pass

    # -- plumbing ---------------------------------------------------------

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status, obj, headers=None, body_delay_ms=0):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        if body_delay_ms:
            self.wfile.flush()
            time.sleep(body_delay_ms / 1000.0)
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def anthropic_headers(self, request_id, extra):
        headers = {"request-id": request_id, "anthropic-organization-id": ORGANIZATION_ID}
        headers.update(extra or {})
        return headers

    def send_error_body(self, status, error_type, message, headers):
        request_id = headers.get("request-id") or new_id("req_")
        body = {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }
        self.send_json(status, body, headers)

    # -- control endpoints ------------------------------------------------

    def control(self, path):
        rec = self.server.recorder
        if path == "/_mock/health" and self.command == "GET":
            self.send_json(200, {"status": "ok"})
        elif path == "/_mock/requests" and self.command == "GET":
            self.send_json(200, rec.snapshot())
        elif path == "/_mock/requests" and self.command == "DELETE":
            rec.clear()
            self.send_json(200, {"cleared": True})
        elif path == "/_mock/stats" and self.command == "GET":
            self.send_json(200, rec.stats())
        elif path == "/_mock/token_calls" and self.command == "GET":
            with rec.lock:
                calls = list(rec.token_calls)
            self.send_json(200, calls)
        elif path.startswith("/_mock/gates/") and self.command in ("GET", "POST"):
            gate = rec.gate(path[len("/_mock/gates/"):])
            if self.command == "POST":
                gate["open"].set()
            with rec.lock:
                state = {"waiting": gate["waiting"], "open": gate["open"].is_set()}
            self.send_json(200, state)
        else:
            self.send_json(404, {"error": "unknown control endpoint"})

    # -- API --------------------------------------------------------------

    def handle_any(self):
        self.connection.settimeout(None)
        body = self.read_body()
        path = urlsplit(self.path).path
        if path.startswith("/_mock/"):
            self.control(path)
            return
        if path == "/v1/oauth/token":
            self.token(body)
            return
        headers = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = headers[key] + ", " + value if key in headers else value
        self.server.recorder.record({
            "method": self.command,
            "path": self.path,
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
            "time": time.time(),
        })
        key = self.headers.get("x-api-key") or ""
        auth = self.headers.get("Authorization") or ""
        if not key and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        self.server.recorder.enter(key)
        try:
            self.api(path, body, key)
        finally:
            self.server.recorder.leave(key)

    def token(self, body):
        rec = self.server.recorder
        try:
            grant = json.loads(body)
        except ValueError:
            grant = None
        with rec.lock:
            rec.token_calls.append({"body": body.decode("utf-8", "replace"), "time": time.time()})
        time.sleep(0.3)
        refresh = grant.get("refresh_token") if isinstance(grant, dict) else None
        if isinstance(refresh, str) and "unavailable" in refresh:
            self.send_json(503, {"error": "temporarily_unavailable"})
            return
        with rec.lock:
            ok = (self.command == "POST" and grant.get("grant_type") == "refresh_token"
                  and isinstance(refresh, str) and refresh.startswith("sk-ant-ort01-")
                  and refresh not in rec.used_refresh_tokens and grant.get("client_id"))
            if ok:
                rec.used_refresh_tokens.add(refresh)
                rec.issued += 1
                n = rec.issued
        if not ok:
            self.send_json(400, {"error": "invalid_grant",
                                 "error_description": "refresh token invalid or used"})
            return
        self.send_json(200, {"token_type": "Bearer", "expires_in": 28800,
                             "access_token": "sk-ant-oat01-mock-%d-%s" % (n, new_id("")),
                             "refresh_token": "sk-ant-ort01-mock-%d-%s" % (n, new_id("")),
                             "scope": "user:inference"})

    def api(self, path, body, key):
        request_id = new_id("req_")
        base_headers = self.anthropic_headers(request_id, None)
        if self.command != "POST" or path not in ("/v1/messages", "/v1/messages/count_tokens"):
            self.send_error_body(404, "not_found_error", "Not found", base_headers)
            return
        if not key:
            self.send_error_body(401, "authentication_error", "x-api-key header is required",
                                 base_headers)
            return
        if key == INVALID_KEY:
            self.send_error_body(401, "authentication_error", "invalid x-api-key", base_headers)
            return
        if not self.headers.get("anthropic-version"):
            self.send_error_body(400, "invalid_request_error",
                                 "anthropic-version: header is required", base_headers)
            return
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("body must be a JSON object")
            opts = parse_options(payload)
        except ValueError as exc:
            self.send_error_body(400, "invalid_request_error", "Invalid request body: %s" % exc,
                                 base_headers)
            return
        model = payload.get("model")
        if not isinstance(model, str) or not isinstance(payload.get("messages"), list):
            self.send_error_body(400, "invalid_request_error", "model and messages are required",
                                 base_headers)
            return
        if path == "/v1/messages/count_tokens":
            extra = sorted(set(payload) - COUNT_TOKENS_FIELDS)
            if extra:
                self.send_error_body(400, "invalid_request_error",
                                     "%s: Extra inputs are not permitted" % extra[0],
                                     base_headers)
                return
        headers = self.anthropic_headers(request_id, opts.get("headers"))
        if opts.get("delay_ms"):
            time.sleep(opts["delay_ms"] / 1000.0)
        if (opts.get("gate") is not None and payload.get("stream") is not True
                and not self.server.recorder.pass_gate(str(opts["gate"]))):
            self.cut()
        if key in (opts.get("hang_up_for") or []):
            self.cut()
        status = int(opts.get("status", 200))
        # per-credential answers, e.g. {"status_for": {"<credential>": 529}}
        status = int((opts.get("status_for") or {}).get(key, status))
        if status != 200:
            error_type = opts.get("error_type") or ERROR_TYPES.get(status, "api_error")
            message = opts.get("error_message") or ERROR_MESSAGES.get(error_type, "Error")
            self.send_error_body(status, error_type, message, headers)
            return
        usage = build_usage(opts.get("usage"))
        if path == "/v1/messages/count_tokens":
            self.send_json(200, {"input_tokens": usage["input_tokens"]}, headers)
            return
        text = opts.get("text", DEFAULT_TEXT)
        if payload.get("stream") is True:
            self.stream(model, text, usage, opts, headers)
            return
        content = [{"type": "text", "text": text}]
        tool = opts.get("tool_use")
        if tool:
            content.append({"type": "tool_use", "id": new_id("toolu_"), "name": tool["name"],
                            "input": tool.get("input", {})})
        message = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use" if tool else "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        self.send_json(200, message, headers, float(opts.get("body_delay_ms", 0)))

    def stream(self, model, text, usage, opts, headers):
        count = max(int(opts.get("events", 3)), 1)
        start_usage = dict(usage, output_tokens=1)
        delta_usage = {"output_tokens": usage["output_tokens"]}
        if usage.get("server_tool_use"):
            # the uses are counted as the answer goes: none at its start, all in its last delta
            start_usage["server_tool_use"] = {k: 0 for k in usage["server_tool_use"]}
            delta_usage["server_tool_use"] = usage["server_tool_use"]
        delta_usage.update(opts.get("delta_usage") or {})
        events = [("message_start", {
            "type": "message_start",
            "message": {
                "id": new_id("msg_"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        })]
        index = 0
        thinking = opts.get("thinking")
        if thinking:
            events += [
                ("content_block_start", {
                    "type": "content_block_start", "index": 0,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
                ("content_block_delta", {
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": thinking.get("text", "")}}),
                ("content_block_delta", {
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "signature_delta",
                              "signature": thinking.get("signature", "")}}),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ]
            index = 1
        events += [("content_block_start", {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "text", "text": ""},
        }), ("ping", {"type": "ping"})]
        for piece in split_text(text, count):
            events.append(("content_block_delta", {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": piece},
            }))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        tool = opts.get("tool_use")
        if tool:
            arguments = json.dumps(tool.get("input", {}))
            half = len(arguments) // 2
            events.append(("content_block_start", {
                "type": "content_block_start", "index": index + 1,
                "content_block": {"type": "tool_use", "id": new_id("toolu_"),
                                  "name": tool["name"], "input": {}}}))
            for piece in (arguments[:half], arguments[half:]):
                events.append(("content_block_delta", {
                    "type": "content_block_delta", "index": index + 1,
                    "delta": {"type": "input_json_delta", "partial_json": piece}}))
            events.append(("content_block_stop", {"type": "content_block_stop",
                                                   "index": index + 1}))
        lingering = set()  # the events sent 100 ms after the one before
        for _ in range(int(opts.get("linger_ms", 0)) // 100):
            lingering.add(len(events))
            events.append(("ping", {"type": "ping"}))
        events += [
            ("message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use" if tool else "end_turn",
                          "stop_sequence": None},
                "usage": delta_usage,
            }),
            ("message_stop", {"type": "message_stop"}),
        ]
        cut_after = opts.get("cut_after")
        event_delay = float(opts.get("event_delay_ms", 0)) / 1000.0
        gate = opts.get("gate")
        gate_after = int(opts.get("gate_after", 1))

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.flush()
        for sent, (name, data) in enumerate(events):
            if cut_after is not None and sent >= int(cut_after):
                self.cut()
            if gate is not None and sent == gate_after and not self.server.recorder.pass_gate(
                    str(gate)):
                self.cut()
            if sent and event_delay:
                time.sleep(event_delay)
            if sent in lingering:
                time.sleep(0.1)
            frame = ("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        if cut_after is not None and int(cut_after) <= len(events):
            self.cut()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut(self):
        """Drop the connection in the middle of a chunked body."""
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise ConnectionCut()

    idle_timeout = None

    def handle_one_request(self):
        # the wait for a request line is bounded by --idle-timeout (the base
        # class ends the connection when it passes); the request itself not
        self.connection.settimeout(self.idle_timeout)
        try:
            super().handle_one_request()
        except ConnectionCut:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # a thousand connections may arrive at once (bench/soak)
    request_queue_size = 1024

    def __init__(self, address):
        super().__init__(address, Handler)
        self.recorder = Recorder()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--idle-timeout", type=float, default=None,
                        help="close a kept-alive connection idle this many seconds")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="and this key")
    args = parser.parse_args()
    Handler.idle_timeout = args.idle_timeout
    server = Server((args.host, args.port))
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        # the handshake happens in the connection's thread, not in accept()
        server.socket = context.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)

    def on_term(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
