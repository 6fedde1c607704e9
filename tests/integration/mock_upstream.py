#!/usr/bin/env python3
"""Stand-in for the gateway's upstreams: the Anthropic Messages API, Amazon
Bedrock Runtime and Google Vertex AI (its Anthropic models), each answering
as its service does on the wire.

Run: mock_upstream.py --port N   (N = 0 picks a free port; the chosen port is
printed as "PORT <n>" on stdout once the server accepts connections).
--idle-timeout S closes a kept-alive connection that waits S seconds for its
next request, as real servers do (default: kept until the client closes it).
--tls-cert F --tls-key K serve HTTPS (as the real token endpoint does).
Each connection has a thread of its own: a thousand streams at once are a
thousand threads.

Behaviour is steered by the request body, because the gateway forwards only
known headers: when the text of the last user message starts with "mock:",
the rest is a JSON object of options (for all three services unless noted):
  status          answer with this HTTP status and an error body (Anthropic's
                  shape; Bedrock's exception of that status; on Vertex 429 is
                  Google's RESOURCE_EXHAUSTED, other statuses Anthropic's shape)
  status_for      {credential: status}: a status for requests made with that credential
  error_type      override the error type of an Anthropic error body
  error_message   override the message of any error body
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
  bedrock_error   Bedrock only: the exception an error answer names, e.g.
                  "ModelNotReadyException"; alone it makes every answer that
                  error, with the status Bedrock gives it (429 here)
  stream_exception  Bedrock only: {"after": n, "type": "throttlingException",
                  "message": ...}: after n events the stream sends that
                  exception message and ends (type: a member of Bedrock's
                  ResponseStream, internalServerException unless given;
                  message: Bedrock's wording for it unless given)
  corrupt_after   Bedrock only: the event-stream message after the first n
                  carries a wrong message CRC (the ones after it are sound)
A credential is the x-api-key or bearer token of a request; on Bedrock the
access key id of a SigV4 signature or the whole API key; on Vertex the
client_email of the service account the access token was issued to.

Control endpoints: GET /_mock/health, GET|DELETE /_mock/requests (the recorded
requests), GET /_mock/stats (in-flight counters, by credential; reset by DELETE
/_mock/requests), GET /_mock/token_calls (calls of the token endpoints, also
reset by DELETE /_mock/requests), GET /_mock/gates/<name> ({"waiting": streams
paused at the gate, "open": ...}) and POST /_mock/gates/<name> (open it: paused
streams go on, later ones pass; DELETE /_mock/requests forgets all gates,
letting their streams go on). POST /_mock/service_accounts makes a Vertex
service account (below); accounts and their tokens outlive DELETE /_mock/requests.

OAuth token endpoint: POST /v1/oauth/token with {"grant_type": "refresh_token",
"refresh_token": "sk-ant-ort01-...", "client_id": ...} answers after 300 ms with a
new access token, a new refresh token and expires_in 28800; a refresh token works
once (it rotates, as Anthropic's do), a used or malformed one gets 400
invalid_grant, one containing "unavailable" gets 503 (the endpoint down). Its
calls are kept apart from the API requests.

Amazon Bedrock Runtime: POST /model/{modelId}/invoke,
.../invoke-with-response-stream and .../count-tokens, the modelId percent-encoded
(us.anthropic.claude-...-v1%3A0).
Authentication is AWS's:
  - SigV4 (Authorization: AWS4-HMAC-SHA256 Credential=AKID/date/region/bedrock/
    aws4_request, SignedHeaders=..., Signature=...; X-Amz-Date within 5 minutes;
    X-Amz-Security-Token, when sent, among the signed headers), verified as AWS
    verifies it for a non-S3 service. Any access key id starting with AKIA is
    known; its secret is base64(sha256("mock-aws-secret:" + id))[:40] (harness
    aws_test_key). A wrong signature gets 403 InvalidSignatureException, an
    unknown key 403 UnrecognizedClientException, a stale date 403 "Signature
    expired: ...", each with Bedrock's x-amzn-ErrorType and {"message": ...}.
  - a Bedrock API key (Authorization: Bearer ABSK<base64 of "BedrockAPIKey-...">,
    harness bedrock_api_key); another bearer gets 403 {"Message": ...}.
The body is Bedrock's for Anthropic models: anthropic_version "bedrock-2023-05-31",
max_tokens and messages; a `model` or `stream` member is refused (400
ValidationException "Malformed input request: #: extraneous key [model] is not
permitted, ..."). invoke answers the message JSON with Bedrock's x-amzn-RequestId
and X-Amzn-Bedrock-{Input,Output,Cache-Read-Input,Cache-Write-Input}-Token-Count
and -Invocation-Latency headers; invoke-with-response-stream answers
application/vnd.amazon.eventstream: each stream event one message (headers
:event-type chunk, :content-type application/json, :message-type event;
payload {"bytes": base64 of the event JSON, "p": padding}), message_stop with
"amazon-bedrock-invocationMetrics". count-tokens takes {"input": {"invokeModel":
{"body": base64 of an invoke body}}} and answers {"inputTokens": n}, for a
foundation model's id only (an inference profile's is a ValidationException). As Bedrock
does, answers name the model as Anthropic does (claude-sonnet-4-5-20250929 for
us.anthropic.claude-sonnet-4-5-20250929-v1:0) and ids read msg_bdrk_/toolu_bdrk_.

Google Vertex AI: POST /_mock/service_accounts with {"project_id": ...,
"expires_in": lifetime of its access tokens (3599)}, both optional, makes an RSA
key and answers the service-account key JSON Google issues, its token_uri this
mock's /google/token. POST /google/token (form: grant_type=urn:ietf:params:oauth:grant-
type:jwt-bearer&assertion=<JWT>) checks the assertion as Google does (RS256 by the
account's key, kid if given, aud == token_uri, iat/exp, the cloud-platform scope)
and answers {"access_token": "ya29.mock-...", "expires_in", "token_type":
"Bearer"} or 400 {"error": "invalid_grant", "error_description": Google's
wording}; its calls are in token_calls as {"kind": "vertex", "client_email", ...}.
POST /v1/projects/{project}/locations/{location}/publishers/anthropic/models/
{model}:rawPredict and :streamRawPredict take such a token (else 401
UNAUTHENTICATED; another project's URL: 403 PERMISSION_DENIED, both in Google's
shape, an array of it on :streamRawPredict) and a body with anthropic_version
"vertex-2023-10-16", max_tokens, messages, no model, stream: true exactly on
:streamRawPredict (else 400 in Anthropic's shape). They answer as the Anthropic
API does (SSE for streams), the model named as Anthropic names it
(claude-sonnet-4-5-20250929 for claude-sonnet-4-5@20250929), ids msg_vrtx_ and
toolu_vrtx_. .../models/count-tokens:rawPredict takes a count_tokens body (with
model) and answers {"input_tokens": n}.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import random
import re
import secrets
import signal
import socket
import ssl
import string
import struct
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

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

BEDROCK_PATH = re.compile(r"^/model/([^/]+)/(invoke|invoke-with-response-stream|count-tokens)$")
BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
# x-amzn-ErrorType names where an error comes from: AWS's request authentication
# or Bedrock itself
AWS_AUTH_ERRORS = "http://internal.amazon.com/coral/com.amazon.coral.service/"
BEDROCK_ERRORS = "http://internal.amazon.com/coral/com.amazon.bedrock/"
# exception: (the HTTP status Bedrock answers it with, its message there)
BEDROCK_EXCEPTIONS = {
    "ValidationException": (400, "Malformed input request, please reformat your input and "
                                 "try again."),
    "ServiceQuotaExceededException": (400, "Your request exceeds the service quota for your "
                                           "account. You can resubmit your request later."),
    "AccessDeniedException": (403, "You don't have access to the model with the specified "
                                   "model ID."),
    "ResourceNotFoundException": (404, "Could not resolve the foundation model from the "
                                       "provided model identifier."),
    "ModelTimeoutException": (408, "Model has timed out in processing the request. Try your "
                                   "request again."),
    "ModelErrorException": (424, "The model encountered an error."),
    "ModelStreamErrorException": (424, "An error occurred while streaming the response. "
                                       "Retry your request."),
    "ThrottlingException": (429, "Too many requests, please wait before trying again."),
    "ModelNotReadyException": (429, "Model is not ready for inference. Wait and try your "
                                    "request again."),
    "InternalServerException": (500, "The system encountered an unexpected error during "
                                     "processing. Try your request again."),
    "ServiceUnavailableException": (503, "Bedrock is unable to process your request."),
}
BEDROCK_EXCEPTION_OF_STATUS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you "
                      "provided. Check your AWS Secret Access Key and signing method. Consult "
                      "the service documentation for details.")
# how far X-Amz-Date may be from the service's clock
SIGNATURE_SKEW = datetime.timedelta(minutes=5)
# Bedrock pads each chunk with a prefix of this of random length, so that the
# sizes of the messages do not give away the lengths of the tokens in them
PADDING = string.ascii_lowercase + string.ascii_uppercase + string.digits

VERTEX_PATH = re.compile(r"^/(?:v1|v1beta1)/projects/([^/]+)/locations/([^/]+)/publishers/"
                         r"anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$")
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Google takes assertions that live an hour at most and were made (by the
# client's clock) at most this long in its future
ASSERTION_LIFETIME = 3600
ASSERTION_SKEW = 300
ASSERTION_TIMES = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                   "reasonable timeframe. Check your iat and exp values in the JWT claim.")
GOOGLE_CREDENTIALS_EXPECTED = ("Expected OAuth 2 access token, login cookie or other valid "
                               "authentication credential. See "
                               "https://developers.google.com/identity/sign-in/web/"
                               "devconsole-project.")


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
        self.service_accounts = {}  # client_email -> its key and settings
        self.service_accounts_made = 0
        self.vertex_tokens = {}  # access token -> {"client_email", "project_id", "expires_at"}

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

    def vertex_grant(self, token):
        """What a Vertex access token was issued for, or None."""
        with self.lock:
            grant = self.vertex_tokens.get(token)
            return dict(grant) if grant else None


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


def build_message(model, text, usage, tool, id_infix):
    """A whole answer; id_infix marks ids as the cloud services do (msg_bdrk_...)."""
    content = [{"type": "text", "text": text}]
    if tool:
        content.append({"type": "tool_use", "id": new_id("toolu_" + id_infix),
                        "name": tool["name"], "input": tool.get("input", {})})
    return {
        "id": new_id("msg_" + id_infix),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if tool else "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def stream_events(model, text, usage, opts, id_infix):
    """A streamed answer as (name, data) events, and the indexes of the events
    sent 100 ms after the one before (linger_ms)."""
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
            "id": new_id("msg_" + id_infix),
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
            "content_block": {"type": "tool_use", "id": new_id("toolu_" + id_infix),
                              "name": tool["name"], "input": {}}}))
        for piece in (arguments[:half], arguments[half:]):
            events.append(("content_block_delta", {
                "type": "content_block_delta", "index": index + 1,
                "delta": {"type": "input_json_delta", "partial_json": piece}}))
        events.append(("content_block_stop", {"type": "content_block_stop",
                                               "index": index + 1}))
    lingering = set()
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
    return events, lingering


def sse_event(name, data):
    return ("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode()


def event_stream_message(headers, payload, corrupt=False):
    """One message of AWS's event-stream encoding; headers are (name, string) pairs."""
    encoded = b"".join(
        struct.pack(">B", len(name)) + name.encode() + struct.pack(">BH", 7, len(value.encode()))
        + value.encode() for name, value in headers)
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    crc = zlib.crc32(message) ^ (0xFFFFFFFF if corrupt else 0)
    return message + struct.pack(">I", crc)


def compact_json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class EventStreamEncoder:
    """Stream events as the messages of Bedrock's event stream, counted so
    that the one corrupt_after names gets a wrong CRC."""

    def __init__(self, started, usage, opts):
        self.started = started
        self.usage = usage
        self.corrupt_at = opts.get("corrupt_after")
        self.sent = 0
        self.first_byte = None

    def chunk(self, name, data):
        now = time.monotonic()
        if self.first_byte is None:
            self.first_byte = now
        if name == "message_stop":
            # Bedrock's own account of the invocation rides on the last event
            data = dict(data, **{"amazon-bedrock-invocationMetrics": {
                "inputTokenCount": self.usage["input_tokens"],
                "outputTokenCount": self.usage["output_tokens"],
                "invocationLatency": int((now - self.started) * 1000),
                "firstByteLatency": int((self.first_byte - self.started) * 1000),
                "cacheReadInputTokenCount": self.usage["cache_read_input_tokens"],
                "cacheWriteInputTokenCount": self.usage["cache_creation_input_tokens"],
            }})
        payload = compact_json({"bytes": base64.b64encode(compact_json(data)).decode(),
                                "p": PADDING[:random.randint(1, len(PADDING))]})
        return self.message([(":event-type", "chunk"), (":content-type", "application/json"),
                             (":message-type", "event")], payload)

    def exception(self, spec):
        kind = spec.get("type", "internalServerException")
        default = BEDROCK_EXCEPTIONS.get(kind[:1].upper() + kind[1:], (500, "Error"))[1]
        return self.message([(":exception-type", kind), (":content-type", "application/json"),
                             (":message-type", "exception")],
                            compact_json({"message": spec.get("message") or default}))

    def message(self, headers, payload):
        corrupt = self.corrupt_at is not None and self.sent == int(self.corrupt_at)
        self.sent += 1
        return event_stream_message(headers, payload, corrupt)


class AnthropicWire:
    """How the Anthropic API puts an answer on the wire; the cloud services
    differ from it where they do."""
    id_infix = ""

    def default_status(self, opts):
        return 200

    def send_error(self, handler, status, opts, headers):
        error_type = opts.get("error_type") or ERROR_TYPES.get(status, "api_error")
        message = opts.get("error_message") or ERROR_MESSAGES.get(error_type, "Error")
        handler.send_error_body(status, error_type, message, headers)

    def send_count(self, handler, input_tokens, headers):
        handler.send_json(200, {"input_tokens": input_tokens}, headers)

    def send_message(self, handler, message, opts, headers):
        handler.send_json(200, message, headers, float(opts.get("body_delay_ms", 0)))

    def send_stream(self, handler, events, lingering, usage, opts, headers):
        head = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        handler.write_stream(events, lingering, opts, head, headers, sse_event)


class VertexWire(AnthropicWire):
    """Vertex passes the model's answers and errors through, but its own
    frontend answers a quota error, in Google's shape."""
    id_infix = "vrtx_"

    def __init__(self, model, location, streamed):
        self.model = model
        self.location = location
        self.streamed = streamed

    def send_error(self, handler, status, opts, headers):
        if status != 429:
            super().send_error(handler, status, opts, headers)
            return
        quota = ("global_online_prediction_requests_per_base_model" if self.location == "global"
                 else "online_prediction_requests_per_base_model")
        base_model = re.sub(r"(-v\d+)?@.*$", "", self.model)
        message = opts.get("error_message") or (
            "Quota exceeded for aiplatform.googleapis.com/%s with base model: anthropic-%s. "
            "Please submit a quota increase request. "
            "https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai."
            % (quota, base_model))
        handler.send_google_error(429, "RESOURCE_EXHAUSTED", message, streamed=self.streamed,
                                  headers=headers)


class BedrockWire(AnthropicWire):
    """Bedrock's errors are exceptions; its stream is an AWS event stream."""
    id_infix = "bdrk_"

    def __init__(self, started):
        self.started = started

    def default_status(self, opts):
        exception = opts.get("bedrock_error")
        return BEDROCK_EXCEPTIONS.get(exception, (400, ""))[0] if exception else 200

    def send_error(self, handler, status, opts, headers):
        exception = opts.get("bedrock_error") or BEDROCK_EXCEPTION_OF_STATUS.get(
            status, "InternalServerException" if status >= 500 else "ValidationException")
        message = opts.get("error_message") or BEDROCK_EXCEPTIONS.get(exception, (0, "Error"))[1]
        handler.send_aws_error(status, exception, BEDROCK_ERRORS, message, headers)

    def send_count(self, handler, input_tokens, headers):
        handler.send_json(200, {"inputTokens": input_tokens}, headers)

    def send_message(self, handler, message, opts, headers):
        usage = message["usage"]
        headers = dict(headers, **{
            "X-Amzn-Bedrock-Invocation-Latency": int((time.monotonic() - self.started) * 1000),
            "X-Amzn-Bedrock-Output-Token-Count": usage["output_tokens"],
            "X-Amzn-Bedrock-Input-Token-Count": usage["input_tokens"],
            "X-Amzn-Bedrock-Cache-Read-Input-Token-Count": usage["cache_read_input_tokens"],
            "X-Amzn-Bedrock-Cache-Write-Input-Token-Count": usage["cache_creation_input_tokens"],
        })
        super().send_message(handler, message, opts, headers)

    def send_stream(self, handler, events, lingering, usage, opts, headers):
        encoder = EventStreamEncoder(self.started, usage, opts)
        head = {"Content-Type": "application/vnd.amazon.eventstream",
                "X-Amzn-Bedrock-Content-Type": "application/json"}
        exception = opts.get("stream_exception")
        if exception:
            events = events[:int(exception.get("after", 0))]
        handler.write_stream(events, lingering, opts, head, headers, encoder.chunk,
                             (lambda: encoder.exception(exception)) if exception else None)


def bedrock_model_name(model_id):
    """The name Bedrock's answers give a model: Anthropic's, without the
    region group, vendor and version of the id (or ARN) the request used."""
    name = model_id.rsplit("/", 1)[-1]
    match = re.fullmatch(r"(?:[a-z-]+\.)?anthropic\.(.+?)(?:-v\d+(?::[0-9a-z]+)*)?", name)
    return match.group(1) if match else model_id


def vertex_model_name(model):
    """The name Vertex's answers give a model: claude-3-5-sonnet-v2@20241022
    answers as claude-3-5-sonnet-20241022."""
    return re.sub(r"(-v\d+)?@", "-", model)


def aws_secret(access_key_id):
    """The secret access key of a mock access key id (harness.aws_test_key)."""
    digest = hashlib.sha256(("mock-aws-secret:" + access_key_id).encode()).digest()
    return base64.b64encode(digest).decode()[:40]


def aws_encode(text):
    """AWS's URI encoding: everything but the unreserved characters."""
    return quote(text, safe="-_.~")


def sigv4_signature(secret, scope, string_to_sign):
    key = ("AWS4" + secret).encode()
    for part in scope:
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def bedrock_api_key_fault(key):
    """Why Bedrock refuses an API key: (exception, message), or None."""
    if not key.startswith("ABSK"):
        return "AccessDeniedException", "Invalid API Key format: Must start with pre-defined prefix"
    try:
        decoded = base64.b64decode(key[4:], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        decoded = ""
    if not decoded.startswith("BedrockAPIKey-"):
        return ("AccessDeniedException",
                "Authentication failed: Please make sure your API Key is valid.")
    return None


def bedrock_body_fault(payload):
    """Why Bedrock's schema of an Anthropic model's body refuses it, or None."""
    def malformed(problem):
        return "Malformed input request: %s, please reformat your input and try again." % problem
    if not isinstance(payload, dict):
        return malformed("#: expected type: JSONObject, found: %s" % type(payload).__name__)
    for member in ("anthropic_version", "max_tokens", "messages"):
        if member not in payload:
            return malformed("#: required key [%s] not found" % member)
    for member in ("model", "stream"):
        if member in payload:
            return malformed("#: extraneous key [%s] is not permitted" % member)
    if payload["anthropic_version"] != BEDROCK_ANTHROPIC_VERSION:
        return malformed("#/anthropic_version: %s is not a valid enum value"
                         % payload["anthropic_version"])
    if not isinstance(payload["messages"], list):
        return malformed("#/messages: expected type: JSONArray, found: %s"
                         % type(payload["messages"]).__name__)
    return None


def count_tokens_invoke_body(body):
    """The invoke body a Bedrock count-tokens request wraps, or None."""
    try:
        return base64.b64decode(json.loads(body)["input"]["invokeModel"]["body"], validate=True)
    except (ValueError, KeyError, TypeError):
        return None


def vertex_body_fault(payload, counting, streamed):
    """Why the model behind Vertex refuses a body, or None (Anthropic's wording)."""
    if counting:
        if streamed:
            return "count-tokens: answered by :rawPredict only"
        if not isinstance(payload.get("model"), str):
            return "model: Field required"
        if not isinstance(payload.get("messages"), list):
            return "messages: Field required"
        extra = sorted(set(payload) - COUNT_TOKENS_FIELDS - {"anthropic_version"})
        return "%s: Extra inputs are not permitted" % extra[0] if extra else None
    if "anthropic_version" not in payload:
        return "anthropic_version: Field required"
    if payload["anthropic_version"] != VERTEX_ANTHROPIC_VERSION:
        return "anthropic_version: Input should be '%s'" % VERTEX_ANTHROPIC_VERSION
    if "model" in payload:
        return "model: Extra inputs are not permitted"
    for member in ("max_tokens", "messages"):
        if member not in payload:
            return "%s: Field required" % member
    if not isinstance(payload["messages"], list):
        return "messages: Input should be a valid list"
    if (payload.get("stream") is True) != streamed:
        return ("stream: true is answered by :streamRawPredict only" if not streamed
                else "stream: :streamRawPredict needs stream: true")
    return None


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rs256_valid(public_key, signature, signed):
    # cryptography is imported where Vertex needs it: the other services work without it
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    try:
        public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


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

    def send_json(self, status, obj, headers=None, body_delay_ms=0,
                  content_type="application/json", indent=None):
        data = json.dumps(obj, indent=indent).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
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

    def read_payload(self, body, headers):
        """The request's JSON object and its mock options; (None, None) once a
        400 in Anthropic's shape went out for a body that is neither."""
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("body must be a JSON object")
            return payload, parse_options(payload)
        except ValueError as exc:
            self.send_error_body(400, "invalid_request_error", "Invalid request body: %s" % exc,
                                 headers)
            return None, None

    def send_error_body(self, status, error_type, message, headers):
        request_id = headers.get("request-id") or new_id("req_")
        body = {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }
        self.send_json(status, body, headers)

    def send_aws_error(self, status, exception, origin, message, headers, member="message"):
        """An AWS error: its name in x-amzn-ErrorType, the message in the body
        (under "Message" where Bedrock's API-key check writes it so)."""
        headers = dict(headers, **{"x-amzn-ErrorType": "%s:%s" % (exception, origin)})
        self.send_json(status, {member: message}, headers)

    def send_google_error(self, status, code, message, details=None, streamed=False,
                          headers=None):
        error = {"code": status, "message": message, "status": code}
        if details:
            error["details"] = details
        body = {"error": error}
        # a streaming method answers its error as the array its answer would have been
        self.send_json(status, [body] if streamed else body, headers,
                       content_type="application/json; charset=UTF-8", indent=2)

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # -- control endpoints ------------------------------------------------

    def control(self, path, body):
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
        elif path == "/_mock/service_accounts" and self.command == "POST":
            self.new_service_account(body)
        else:
            self.send_json(404, {"error": "unknown control endpoint"})

    def new_service_account(self, body):
        """A Vertex service account's key file, as Google issues it."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        rec = self.server.recorder
        try:
            opts = json.loads(body) if body else {}
            if not isinstance(opts, dict):
                raise ValueError("options must be a JSON object")
        except ValueError as exc:
            self.send_json(400, {"error": str(exc)})
            return
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with rec.lock:
            rec.service_accounts_made += 1
            n = rec.service_accounts_made
        project = opts.get("project_id") or "mock-project-%d" % n
        email = "mock-sa-%d@%s.iam.gserviceaccount.com" % (n, project)
        key_id = secrets.token_hex(20)
        host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
        token_uri = "%s://%s/google/token" % ("https" if self.server.tls else "http", host)
        with rec.lock:
            rec.service_accounts[email] = {
                "public_key": key.public_key(), "private_key_id": key_id, "project_id": project,
                "token_uri": token_uri, "expires_in": int(opts.get("expires_in", 3599))}
        self.send_json(200, {
            "type": "service_account",
            "project_id": project,
            "private_key_id": key_id,
            "private_key": key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode(),
            "client_email": email,
            "client_id": str(random.randrange(10 ** 20, 10 ** 21)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
                                    + quote(email),
            "universe_domain": "googleapis.com",
        })

    # -- API --------------------------------------------------------------

    def handle_any(self):
        self.connection.settimeout(None)
        self.started = time.monotonic()
        body = self.read_body()
        path = urlsplit(self.path).path
        if path.startswith("/_mock/"):
            self.control(path, body)
            return
        if path == "/v1/oauth/token":
            self.token(body)
            return
        if path == "/google/token":
            self.google_token(body)
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
        bedrock = BEDROCK_PATH.match(path)
        vertex = VERTEX_PATH.match(path)
        key = self.credential(bedrock, vertex)
        self.server.recorder.enter(key)
        try:
            if bedrock:
                self.bedrock(bedrock, body, key)
            elif vertex:
                self.vertex(vertex, body, key)
            else:
                self.api(path, body, key)
        finally:
            self.server.recorder.leave(key)

    def credential(self, bedrock, vertex):
        """Who a request is made as (see the module's docstring)."""
        auth = self.headers.get("Authorization") or ""
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if bedrock and auth.startswith("AWS4-"):
            match = re.search(r"Credential=([^/,\s]*)", auth)
            return match.group(1) if match else ""
        if vertex:
            grant = self.server.recorder.vertex_grant(bearer)
            return grant["client_email"] if grant else bearer
        return self.headers.get("x-api-key") or bearer

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

    def google_token(self, body):
        """Google's token endpoint for a service account's signed assertion."""
        rec = self.server.recorder
        form = {name: values[0] for name, values in
                parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        status, answer, client_email = self.jwt_grant(form)
        with rec.lock:
            rec.token_calls.append({"kind": "vertex", "client_email": client_email,
                                    "grant_type": form.get("grant_type"), "status": status,
                                    "time": time.time()})
        self.send_json(status, answer, content_type="application/json; charset=utf-8")

    def jwt_grant(self, form):
        """(status, answer, the assertion's issuer) for a token request."""
        if form.get("grant_type") != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "Invalid grant_type: %s"
                                              % form.get("grant_type", "")}, None
        if not form.get("assertion"):
            return 400, {"error": "invalid_request",
                         "error_description": "Missing required parameter: assertion"}, None
        try:
            header_part, claims_part, signature_part = form["assertion"].split(".")
            header = json.loads(b64url_decode(header_part))
            claims = json.loads(b64url_decode(claims_part))
            signature = b64url_decode(signature_part)
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError("not a JWT")
        except ValueError:
            header = claims = None
        client_email = claims.get("iss") if claims else None

        def refuse(description, error="invalid_grant"):
            return 400, {"error": error, "error_description": description}, client_email

        if claims is None:
            return refuse("Invalid JWT Signature.")
        if not client_email:
            return refuse("Invalid email or User ID.")
        rec = self.server.recorder
        with rec.lock:
            account = rec.service_accounts.get(client_email)
        if account is None:
            return refuse("Invalid grant: account not found")
        if (header.get("alg") != "RS256"
                or header.get("kid", account["private_key_id"]) != account["private_key_id"]
                or not rs256_valid(account["public_key"], signature,
                                   ("%s.%s" % (header_part, claims_part)).encode())):
            return refuse("Invalid JWT Signature.")
        if claims.get("aud") != account["token_uri"]:
            return refuse("Invalid JWT: Failed audience check.")
        if "iat" not in claims:
            return refuse("Invalid JWT: iat (issued at) is not set.")
        if "exp" not in claims:
            return refuse("Invalid JWT: exp (expiration time) is not set.")
        try:
            issued, expires = float(claims["iat"]), float(claims["exp"])
        except (TypeError, ValueError):
            return refuse(ASSERTION_TIMES)
        now = time.time()
        if issued > now + ASSERTION_SKEW or expires <= now or expires - issued > ASSERTION_LIFETIME:
            return refuse(ASSERTION_TIMES)
        if CLOUD_PLATFORM_SCOPE not in str(claims.get("scope", "")).split():
            return refuse("Invalid OAuth scope or ID token audience provided.", "invalid_scope")
        with rec.lock:
            token = "ya29.mock-%d-%s" % (len(rec.vertex_tokens) + 1, secrets.token_urlsafe(32))
            rec.vertex_tokens[token] = {"client_email": client_email,
                                        "project_id": account["project_id"],
                                        "expires_at": now + account["expires_in"]}
        return 200, {"access_token": token, "expires_in": account["expires_in"],
                     "token_type": "Bearer"}, client_email

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
        payload, opts = self.read_payload(body, base_headers)
        if payload is None:
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
        self.answer(AnthropicWire(), model, opts, key, headers,
                    streaming=payload.get("stream") is True,
                    counting=path == "/v1/messages/count_tokens")

    def bedrock(self, match, body, key):
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        model_id, action = unquote(match.group(1)), match.group(2)
        if self.command != "POST":
            self.send_aws_error(404, "UnknownOperationException", AWS_AUTH_ERRORS,
                                "Unknown operation", headers)
            return
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            fault, member = bedrock_api_key_fault(auth[7:].strip()), "Message"
        elif auth.startswith("AWS4-"):
            fault, member = self.sigv4_fault(auth, body), "message"
        else:
            fault, member = ("MissingAuthenticationTokenException",
                             "Authorization header is missing"), "Message"
        if fault:
            self.send_aws_error(403, fault[0], AWS_AUTH_ERRORS, fault[1], headers, member)
            return
        if action == "count-tokens" and re.match(r"[a-z]+\.anthropic\.", model_id):
            # an inference profile counts nothing: only a foundation model does
            self.send_aws_error(400, "ValidationException", BEDROCK_ERRORS,
                                "The provided model doesn't support counting tokens.", headers)
            return
        invoke_body = count_tokens_invoke_body(body) if action == "count-tokens" else body
        try:
            payload = json.loads(invoke_body) if invoke_body is not None else None
        except ValueError:
            payload = None
        problem = (bedrock_body_fault(payload) if payload is not None
                   else BEDROCK_EXCEPTIONS["ValidationException"][1])
        if not problem:
            try:
                opts = parse_options(payload)
            except ValueError as exc:
                problem = "Invalid mock options: %s" % exc
        if problem:
            self.send_aws_error(400, "ValidationException", BEDROCK_ERRORS, problem, headers)
            return
        headers.update(opts.get("headers") or {})
        self.answer(BedrockWire(self.started), bedrock_model_name(model_id), opts, key, headers,
                    streaming=action == "invoke-with-response-stream",
                    counting=action == "count-tokens")

    def sigv4_fault(self, authorization, body):
        """Why AWS refuses a request's SigV4 signature: (exception, message), or
        None. The checks and their wording follow AWS's, in its order."""
        algorithm, _, rest = authorization.partition(" ")
        params = {}
        for part in rest.split(","):
            name, _, value = part.strip().partition("=")
            params[name] = value
        amz_date = self.headers.get("X-Amz-Date")
        missing = "".join("Authorization header requires '%s' parameter. " % name
                          for name in ("Credential", "Signature", "SignedHeaders")
                          if not params.get(name))
        if not amz_date:
            missing += ("Authorization header requires existence of either a 'X-Amz-Date' or "
                        "a 'Date' header. ")
        if missing:
            return "IncompleteSignatureException", missing + "Authorization=" + authorization
        try:
            signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            return ("IncompleteSignatureException", "Date must be in ISO-8601 'basic format'. "
                    "Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601" % amz_date)
        now = datetime.datetime.now(datetime.timezone.utc)

        def stamp(moment):
            return moment.strftime("%Y%m%dT%H%M%SZ")

        if signed_at < now - SIGNATURE_SKEW:
            return ("InvalidSignatureException", "Signature expired: %s is now earlier than %s "
                    "(%s - 5 min.)" % (amz_date, stamp(now - SIGNATURE_SKEW), stamp(now)))
        if signed_at > now + SIGNATURE_SKEW:
            return ("InvalidSignatureException", "Signature not yet current: %s is still later "
                    "than %s (%s + 5 min.)" % (amz_date, stamp(now + SIGNATURE_SKEW), stamp(now)))
        signed_headers = params["SignedHeaders"].split(";")
        if "host" not in signed_headers:
            return ("InvalidSignatureException",
                    "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
        if algorithm != "AWS4-HMAC-SHA256":
            return ("IncompleteSignatureException", "Unsupported AWS 'algorithm': '%s' (only "
                    "AWS4-HMAC-SHA256 for now). " % algorithm)
        scope = params["Credential"].split("/")
        if len(scope) != 5:
            return ("IncompleteSignatureException", "Credential must have exactly 5 "
                    "slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'"
                    % params["Credential"])
        access_key_id, date, region, service, terminator = scope
        problems = []
        if not re.fullmatch(r"[a-z0-9-]+", region):
            problems.append("Credential should be scoped to a valid region, not '%s'." % region)
        if service != "bedrock":
            problems.append("Credential should be scoped to correct service: 'bedrock'.")
        if terminator != "aws4_request":
            problems.append("Credential should be scoped with a valid terminator: "
                            "'aws4_request', not '%s'." % terminator)
        if date != amz_date[:8]:
            problems.append("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                            "version of date from HTTP: '%s' != '%s', from '%s'."
                            % (date, amz_date[:8], amz_date))
        if problems:
            return "InvalidSignatureException", " ".join(problems)
        if not access_key_id.startswith("AKIA"):
            return ("UnrecognizedClientException",
                    "The security token included in the request is invalid.")
        body_hash = hashlib.sha256(body).hexdigest()
        declared_hash = self.headers.get("x-amz-content-sha256")
        # a session token the signature does not cover could have been swapped
        token_unsigned = (self.headers.get("X-Amz-Security-Token") is not None
                          and "x-amz-security-token" not in signed_headers)
        if (declared_hash is not None and declared_hash != body_hash) or token_unsigned:
            return "InvalidSignatureException", SIGNATURE_MISMATCH
        raw_path, _, raw_query = self.path.partition("?")
        query = sorted(tuple(aws_encode(unquote(piece)) for piece in pair.partition("=")[::2])
                       for pair in raw_query.split("&") if pair)
        canonical_request = "\n".join([
            self.command,
            # each segment as sent, encoded once more (non-S3 services sign it so)
            "/".join(aws_encode(segment) for segment in raw_path.split("/")),
            "&".join("%s=%s" % pair for pair in query),
            "".join("%s:%s\n" % (name, ",".join(" ".join(value.split())
                                                for value in self.headers.get_all(name, [])))
                    for name in signed_headers),
            params["SignedHeaders"],
            body_hash,
        ])
        string_to_sign = "\n".join([
            "AWS4-HMAC-SHA256", amz_date, "/".join(scope[1:]),
            hashlib.sha256(canonical_request.encode()).hexdigest()])
        expected = sigv4_signature(aws_secret(access_key_id), scope[1:], string_to_sign)
        if not hmac.compare_digest(expected, params["Signature"]):
            return "InvalidSignatureException", SIGNATURE_MISMATCH
        return None

    def vertex(self, match, body, key):
        project, location, model, method = match.groups()
        model = unquote(model)
        streamed = method == "streamRawPredict"
        if self.command != "POST":
            self.send_google_error(404, "NOT_FOUND", "Method not found.", streamed=streamed)
            return
        if self.vertex_token_refused(project, location, model, streamed):
            return
        payload, opts = self.read_payload(body, {})
        if payload is None:
            return
        counting = model == "count-tokens"
        problem = vertex_body_fault(payload, counting, streamed)
        if problem:
            self.send_error_body(400, "invalid_request_error", problem, {})
            return
        self.answer(VertexWire(model, location, streamed),
                    payload["model"] if counting else vertex_model_name(model), opts, key,
                    dict(opts.get("headers") or {}), streaming=streamed, counting=counting)

    def vertex_token_refused(self, project, location, model, streamed):
        """Refuse, as Google does, a request whose access token is missing,
        unknown, expired or of another project; False when it is good."""
        auth = self.headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        grant = self.server.recorder.vertex_grant(token) if token else None
        method = "google.cloud.aiplatform.v1.PredictionService.%s" % (
            "StreamRawPredict" if streamed else "RawPredict")

        def unauthenticated(message, reason, challenge):
            info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}
            # Google names no domain for a token that is not one of its own
            if reason != "ACCESS_TOKEN_TYPE_UNSUPPORTED":
                info["domain"] = "googleapis.com"
            info["metadata"] = {"method": method, "service": "aiplatform.googleapis.com"}
            details = [info]
            self.send_google_error(401, "UNAUTHENTICATED",
                                   message + " " + GOOGLE_CREDENTIALS_EXPECTED, details,
                                   streamed, {"WWW-Authenticate": challenge})
            return True

        if not token:
            return unauthenticated("Request is missing required authentication credential.",
                                   "CREDENTIALS_MISSING",
                                   'Bearer realm="https://accounts.google.com/"')
        if grant is None or grant["expires_at"] <= time.time():
            return unauthenticated("Request had invalid authentication credentials.",
                                   "ACCESS_TOKEN_EXPIRED" if grant
                                   else "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                                   'Bearer realm="https://accounts.google.com/", '
                                   'error="invalid_token"')
        if grant["project_id"] != project:
            resource = "projects/%s/locations/%s/publishers/anthropic/models/%s" % (
                project, location, model)
            details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "IAM_PERMISSION_DENIED", "domain": "aiplatform.googleapis.com",
                        "metadata": {"permission": "aiplatform.endpoints.predict",
                                     "resource": resource}}]
            self.send_google_error(403, "PERMISSION_DENIED",
                                   "Permission 'aiplatform.endpoints.predict' denied on resource "
                                   "'//aiplatform.googleapis.com/%s' (or it may not exist)."
                                   % resource, details, streamed)
            return True
        return False

    def answer(self, wire, model, opts, key, headers, streaming, counting):
        """The answer the options ask for, put on the wire as `wire` does it."""
        if opts.get("delay_ms"):
            time.sleep(opts["delay_ms"] / 1000.0)
        if (opts.get("gate") is not None and not streaming
                and not self.server.recorder.pass_gate(str(opts["gate"]))):
            self.cut()
        if key in (opts.get("hang_up_for") or []):
            self.cut()
        status = int(opts.get("status", wire.default_status(opts)))
        # per-credential answers, e.g. {"status_for": {"<credential>": 529}}
        status = int((opts.get("status_for") or {}).get(key, status))
        if status != 200:
            wire.send_error(self, status, opts, headers)
            return
        usage = build_usage(opts.get("usage"))
        if counting:
            wire.send_count(self, usage["input_tokens"], headers)
            return
        text = opts.get("text", DEFAULT_TEXT)
        if streaming:
            events, lingering = stream_events(model, text, usage, opts, wire.id_infix)
            wire.send_stream(self, events, lingering, usage, opts, headers)
            return
        wire.send_message(self, build_message(model, text, usage, opts.get("tool_use"),
                                              wire.id_infix), opts, headers)

    def write_stream(self, events, lingering, opts, head, headers, encode, finish=None):
        """Send (name, data) events, each framed by encode(name, data), as a
        chunked body after the `head` headers; finish() frames its last message."""
        cut_after = opts.get("cut_after")
        event_delay = float(opts.get("event_delay_ms", 0)) / 1000.0
        gate = opts.get("gate")
        gate_after = int(opts.get("gate_after", 1))

        self.send_response(200)
        for name, value in head.items():
            self.send_header(name, value)
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
            self.write_chunk(encode(name, data))
        if cut_after is not None and int(cut_after) <= len(events):
            self.cut()
        if finish:
            self.write_chunk(finish())
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
    # what a service account's token_uri says
    tls = False

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
        server.tls = True

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
