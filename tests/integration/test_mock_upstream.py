"""The mock upstream itself: wire format, control options, recording, and that
it works behind a plain mod_proxy (no gateway module); its Bedrock and Vertex
parts as clients of the real services see them, with a SigV4 signer, an
event-stream reader and a service account's JWT made here from the specs."""

import base64
import hashlib
import hmac
import http.client
import json
import shutil
import string
import struct
import time
import urllib.parse
import zlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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


# -- Amazon Bedrock ----------------------------------------------------------

BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
AUTH_ERRORS = "http://internal.amazon.com/coral/com.amazon.coral.service/"
BEDROCK_ERRORS = "http://internal.amazon.com/coral/com.amazon.bedrock/"
SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you "
                      "provided. Check your AWS Secret Access Key and signing method. Consult "
                      "the service documentation for details.")
PADDING = string.ascii_lowercase + string.ascii_uppercase + string.digits


def bedrock_path(action, model=BEDROCK_MODEL):
    return "/model/%s/%s" % (urllib.parse.quote(model, safe=""), action)


def bedrock_body(mock=None, **extra):
    body = harness.messages_body(mock=mock, anthropic_version="bedrock-2023-05-31")
    del body["model"]
    body.update(extra)
    return json.dumps(body).encode()


def amz_date(offset=0):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + offset))


def sigv4_headers(port, path, body, key, date=None, session_token=None, sign_token=True,
                  signed_path=None):
    """Headers of a POST signed with AWS Signature Version 4 as its
    specification has a client sign for a non-S3 service: the path's segments
    encoded once more, the signed headers lowercase and sorted, the payload's
    SHA-256, the key an HMAC chain from "AWS4" + secret."""
    access_key_id, secret = key
    date = date or amz_date()
    headers = {"Host": "127.0.0.1:%d" % port, "Content-Type": "application/json",
               "X-Amz-Date": date}
    if session_token:
        headers["X-Amz-Security-Token"] = session_token
    signed = {name.lower(): value for name, value in headers.items()
              if sign_token or name != "X-Amz-Security-Token"}
    names = sorted(signed)
    canonical_request = "\n".join([
        "POST",
        "/".join(urllib.parse.quote(part, safe="-_.~")
                 for part in (signed_path or path).split("/")),
        "",
        "".join("%s:%s\n" % (name, signed[name].strip()) for name in names),
        ";".join(names),
        hashlib.sha256(body).hexdigest(),
    ])
    scope = "%s/us-east-1/bedrock/aws4_request" % date[:8]
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", date, scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    signing_key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                                "Signature=%s" % (access_key_id, scope, ";".join(names),
                                                  signature))
    return headers


def bedrock_post(mock, action, body, key, model=BEDROCK_MODEL, **signing):
    path = bedrock_path(action, model)
    return harness.http_request(mock.port, "POST", path, body,
                                sigv4_headers(mock.port, path, body, key, **signing))


def bedrock_bearer(mock, body, bearer):
    headers = {"Content-Type": "application/json"}
    if bearer:
        headers["Authorization"] = "Bearer " + bearer
    return harness.http_request(mock.port, "POST", bedrock_path("invoke"), body, headers)


def aws_error(answer, status, error_type, origin, message=None):
    """The body of an AWS error answer, its status and x-amzn-ErrorType checked."""
    got, headers, raw = answer
    assert got == status, raw
    assert headers["x-amzn-errortype"] == "%s:%s" % (error_type, origin)
    assert headers["x-amzn-requestid"] and headers["content-type"] == "application/json"
    body = json.loads(raw)
    if message is not None:
        # the API-key check writes "Message", the rest of AWS "message"
        assert body in ({"message": message}, {"Message": message})
    return body


def event_stream_messages(raw):
    """An application/vnd.amazon.eventstream body as (headers, payload, whether
    the message CRC holds), each prelude's CRC checked."""
    messages = []
    while raw:
        total, headers_length, prelude_crc = struct.unpack(">III", raw[:12])
        assert zlib.crc32(raw[:8]) == prelude_crc
        message, raw = raw[:total], raw[total:]
        headers, pos = {}, 12
        while pos < 12 + headers_length:
            name_length = message[pos]
            name = message[pos + 1:pos + 1 + name_length].decode()
            pos += 1 + name_length
            assert message[pos] == 7  # a string
            value_length = struct.unpack(">H", message[pos + 1:pos + 3])[0]
            headers[name] = message[pos + 3:pos + 3 + value_length].decode()
            pos += 3 + value_length
        crc_holds = zlib.crc32(message[:-4]) == struct.unpack(">I", message[-4:])[0]
        messages.append((headers, message[pos:-4], crc_holds))
    return messages


def chunk_payloads(messages):
    """The chunks of a Bedrock stream's messages: {"bytes", "p"} objects."""
    chunks = []
    for headers, payload, _ in messages:
        assert headers == {":event-type": "chunk", ":content-type": "application/json",
                           ":message-type": "event"}
        chunk = json.loads(payload)
        assert set(chunk) == {"bytes", "p"} and chunk["p"] and PADDING.startswith(chunk["p"])
        chunks.append(chunk)
    return chunks


def chunk_events(messages):
    return [json.loads(base64.b64decode(chunk["bytes"])) for chunk in chunk_payloads(messages)]


def without_ids(events):
    """Events with the ids and the model name (which differ by service) blanked."""
    events = json.loads(json.dumps(events))
    for event in events:
        if event["type"] == "message_start":
            event["message"]["id"] = event["message"]["model"] = None
        if event["type"] == "content_block_start" and "id" in event["content_block"]:
            event["content_block"]["id"] = None
    return events


def test_bedrock_sigv4_signed_invoke(mock):
    key = harness.aws_test_key("bedrock-invoke")
    body = bedrock_body(mock={"text": "hi", "usage": {"input_tokens": 12, "output_tokens": 7}})
    status, headers, raw = bedrock_post(mock, "invoke", body, key)
    assert status == 200, raw
    assert headers["content-type"] == "application/json" and headers["x-amzn-requestid"]
    assert headers["x-amzn-bedrock-input-token-count"] == "12"
    assert headers["x-amzn-bedrock-output-token-count"] == "7"
    assert headers["x-amzn-bedrock-invocation-latency"].isdigit()
    msg = json.loads(raw)
    # Bedrock names the model as Anthropic does, and marks its ids
    assert msg["model"] == "claude-sonnet-4-5-20250929" and msg["id"].startswith("msg_bdrk_")
    assert msg["content"] == [{"type": "text", "text": "hi"}]
    [recorded] = mock.requests()
    assert recorded["path"] == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"
    assert recorded["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIA")
    # the credential is the access key id
    assert key[0] in mock.stats()["max_in_flight_by_key"]


def test_bedrock_refuses_a_wrong_or_stale_signature_and_an_unknown_key(mock):
    key = harness.aws_test_key("bedrock-faults")
    body, path = bedrock_body(), bedrock_path("invoke")
    headers = sigv4_headers(mock.port, path, body, key)
    one_byte_changed = body.replace(b"Hello", b"Hellp")
    aws_error(harness.http_request(mock.port, "POST", path, one_byte_changed, headers), 403,
              "InvalidSignatureException", AUTH_ERRORS, SIGNATURE_MISMATCH)
    # the path is signed encoded once more: %3A as %253A, not as %3A
    aws_error(bedrock_post(mock, "invoke", body, key, signed_path=urllib.parse.unquote(path)),
              403, "InvalidSignatureException", AUTH_ERRORS, SIGNATURE_MISMATCH)
    stale = amz_date(-6 * 60)
    error = aws_error(bedrock_post(mock, "invoke", body, key, date=stale), 403,
                      "InvalidSignatureException", AUTH_ERRORS)
    assert error["message"].startswith("Signature expired: %s is now earlier than " % stale)
    assert error["message"].endswith(" - 5 min.)")
    aws_error(bedrock_post(mock, "invoke", body, ("ZZZZ0000000000000000", key[1])), 403,
              "UnrecognizedClientException", AUTH_ERRORS,
              "The security token included in the request is invalid.")
    aws_error(bedrock_bearer(mock, body, None), 403, "MissingAuthenticationTokenException",
              AUTH_ERRORS, "Authorization header is missing")


def test_bedrock_session_token_and_api_key(mock):
    key = harness.aws_test_key("bedrock-session")
    body = bedrock_body()
    status, _, raw = bedrock_post(mock, "invoke", body, key, session_token="FwoGZXIvYXdzE/mock=")
    assert status == 200, raw
    aws_error(bedrock_post(mock, "invoke", body, key, session_token="FwoG", sign_token=False),
              403, "InvalidSignatureException", AUTH_ERRORS, SIGNATURE_MISMATCH)
    api_key = harness.bedrock_api_key("bedrock-bearer")
    status, _, raw = bedrock_bearer(mock, body, api_key)
    assert status == 200 and json.loads(raw)["type"] == "message"
    assert api_key in mock.stats()["max_in_flight_by_key"]
    aws_error(bedrock_bearer(mock, body, "sk-ant-api03-not-bedrock"), 403, "AccessDeniedException",
              AUTH_ERRORS, "Invalid API Key format: Must start with pre-defined prefix")
    aws_error(bedrock_bearer(mock, body, "ABSK" + base64.b64encode(b"Other-x:1").decode()), 403,
              "AccessDeniedException", AUTH_ERRORS,
              "Authentication failed: Please make sure your API Key is valid.")


def test_bedrock_refuses_model_and_stream_in_the_body(mock):
    key = harness.aws_test_key("bedrock-body")
    for member, value in (("model", BEDROCK_MODEL), ("stream", True)):
        aws_error(bedrock_post(mock, "invoke", bedrock_body(**{member: value}), key), 400,
                  "ValidationException", BEDROCK_ERRORS,
                  "Malformed input request: #: extraneous key [%s] is not permitted, please "
                  "reformat your input and try again." % member)
    aws_error(bedrock_post(mock, "invoke", bedrock_body(anthropic_version="2023-06-01"), key),
              400, "ValidationException", BEDROCK_ERRORS)


def test_bedrock_stream_frames_carry_the_messages_stream(mock):
    opts = {"events": 4, "text": "abcdefgh", "thinking": {"text": "T.", "signature": "sig"},
            "tool_use": {"name": "lookup", "input": {"q": "x"}},
            "usage": {"input_tokens": 21, "output_tokens": 9, "cache_read_input_tokens": 4}}
    status, headers, raw = bedrock_post(mock, "invoke-with-response-stream",
                                        bedrock_body(mock=opts),
                                        harness.aws_test_key("bedrock-stream"))
    assert status == 200, raw
    assert headers["content-type"] == "application/vnd.amazon.eventstream"
    assert headers["x-amzn-bedrock-content-type"] == "application/json"
    assert headers["transfer-encoding"] == "chunked" and headers["x-amzn-requestid"]
    messages = event_stream_messages(raw)
    assert all(crc_holds for _, _, crc_holds in messages)
    assert len({len(chunk["p"]) for chunk in chunk_payloads(messages)}) > 1
    events = chunk_events(messages)
    metrics = events[-1].pop("amazon-bedrock-invocationMetrics")
    assert (metrics["inputTokenCount"], metrics["outputTokenCount"]) == (21, 9)
    assert metrics["cacheReadInputTokenCount"] == 4
    assert metrics["invocationLatency"] >= metrics["firstByteLatency"] >= 0
    assert events[0]["message"]["model"] == "claude-sonnet-4-5-20250929"
    assert events[0]["message"]["id"].startswith("msg_bdrk_")
    assert [e["content_block"]["id"] for e in events if e["type"] == "content_block_start"
            and e["content_block"]["type"] == "tool_use"][0].startswith("toolu_bdrk_")
    _, _, sse = harness.http_request(
        mock.port, "POST", "/v1/messages", harness.messages_body(stream=True, mock=opts),
        {"x-api-key": "k", "anthropic-version": harness.ANTHROPIC_VERSION})
    assert without_ids(events) == without_ids([data for _, data in harness.parse_sse(sse)])


def test_bedrock_stream_exception_and_corrupt_crc(mock):
    key = harness.aws_test_key("bedrock-stream-faults")
    exception = {"after": 2, "type": "throttlingException", "message": "Slow down."}
    status, _, raw = bedrock_post(mock, "invoke-with-response-stream",
                                  bedrock_body(mock={"stream_exception": exception}), key)
    assert status == 200
    messages = event_stream_messages(raw)
    assert len(messages) == 3 and all(crc_holds for _, _, crc_holds in messages)
    assert [e["type"] for e in chunk_events(messages[:2])] == ["message_start",
                                                               "content_block_start"]
    assert messages[2][0] == {":exception-type": "throttlingException",
                              ":content-type": "application/json",
                              ":message-type": "exception"}
    assert json.loads(messages[2][1]) == {"message": "Slow down."}
    status, _, raw = bedrock_post(mock, "invoke-with-response-stream",
                                  bedrock_body(mock={"corrupt_after": 1}), key)
    messages = event_stream_messages(raw)
    # the default stream's nine events, the second with a wrong CRC
    assert [crc_holds for _, _, crc_holds in messages] == [True, False] + [True] * 7
    assert chunk_events(messages)[-1]["type"] == "message_stop"


def test_bedrock_errors_and_count_tokens(mock):
    key, other = harness.aws_test_key("bedrock-errors"), harness.aws_test_key("bedrock-other")
    aws_error(bedrock_post(mock, "invoke", bedrock_body(mock={"status": 503}), key), 503,
              "ServiceUnavailableException", BEDROCK_ERRORS,
              "Bedrock is unable to process your request.")
    aws_error(bedrock_post(mock, "invoke-with-response-stream",
                           bedrock_body(mock={"bedrock_error": "ModelNotReadyException"}), key),
              429, "ModelNotReadyException", BEDROCK_ERRORS)
    only_key = bedrock_body(mock={"status_for": {key[0]: 429}})
    aws_error(bedrock_post(mock, "invoke", only_key, key), 429, "ThrottlingException",
              BEDROCK_ERRORS, "Too many requests, please wait before trying again.")
    assert bedrock_post(mock, "invoke", only_key, other)[0] == 200
    invoke_body = bedrock_body(mock={"usage": {"input_tokens": 42}})
    count = json.dumps({"input": {"invokeModel": {
        "body": base64.b64encode(invoke_body).decode()}}}).encode()
    # CountTokens counts for a foundation model only, never an inference profile
    aws_error(bedrock_post(mock, "count-tokens", count, key), 400, "ValidationException",
              BEDROCK_ERRORS, "The provided model doesn't support counting tokens.")
    status, _, raw = bedrock_post(mock, "count-tokens", count, key,
                                  model=BEDROCK_MODEL.partition(".")[2])
    assert status == 200 and json.loads(raw) == {"inputTokens": 42}


# -- Google Vertex AI --------------------------------------------------------

VERTEX_MODEL = "claude-sonnet-4-5@20250929"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion_of(account, signing_key=None, **claims):
    """A service account's signed JWT as a Google client makes it (RFC 7523);
    claims override the usual ones."""
    now = int(time.time())
    claims = dict({"iss": account["client_email"], "scope": CLOUD_PLATFORM,
                   "aud": account["token_uri"], "iat": now, "exp": now + 3600}, **claims)
    header = {"alg": "RS256", "typ": "JWT", "kid": account["private_key_id"]}
    signed = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signing_key = signing_key or serialization.load_pem_private_key(
        account["private_key"].encode(), None)
    signature = signing_key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signed + "." + b64url(signature)


def token_exchange(mock, assertion):
    form = urllib.parse.urlencode({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                   "assertion": assertion})
    status, _, raw = harness.http_request(
        mock.port, "POST", "/google/token", form,
        {"Content-Type": "application/x-www-form-urlencoded"})
    return status, json.loads(raw)


def vertex_access(mock, **opts):
    """A new service account and an access token of it."""
    account = mock.service_account(**opts)
    status, token = token_exchange(mock, assertion_of(account))
    assert status == 200, token
    return account, token["access_token"]


def vertex_path(project, method, model=VERTEX_MODEL):
    return "/v1/projects/%s/locations/us-east5/publishers/anthropic/models/%s:%s" % (
        project, model, method)


def vertex_body(mock=None, stream=False, **extra):
    body = harness.messages_body(mock=mock, stream=stream, anthropic_version="vertex-2023-10-16")
    del body["model"]
    body.update(extra)
    return body


def vertex_post(mock, path, body, token):
    return harness.http_request(mock.port, "POST", path, body,
                                {"Authorization": "Bearer " + token} if token else {})


def test_vertex_service_account_gets_tokens_for_good_assertions_only(mock):
    account = mock.service_account(project_id="vertex-tokens")
    assert account["type"] == "service_account" and account["project_id"] == "vertex-tokens"
    assert account["client_email"].endswith("@vertex-tokens.iam.gserviceaccount.com")
    assert account["token_uri"] == mock.url + "/google/token"
    assert account["private_key"].startswith("-----BEGIN PRIVATE KEY-----\n")
    status, token = token_exchange(mock, assertion_of(account))
    assert status == 200 and token["access_token"].startswith("ya29.")
    assert (token["token_type"], token["expires_in"]) == ("Bearer", 3599)
    now = int(time.time())
    another_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for assertion, description in (
            (assertion_of(account, another_key), "Invalid JWT Signature."),
            (assertion_of(account, aud="https://oauth2.googleapis.com/token"),
             "Invalid JWT: Failed audience check."),
            (assertion_of(account, iat=now - 7200, exp=now - 3600),
             "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
             "timeframe. Check your iat and exp values in the JWT claim.")):
        assert token_exchange(mock, assertion) == (
            400, {"error": "invalid_grant", "error_description": description})
    calls = mock.token_calls()
    assert [(c["kind"], c["client_email"], c["status"]) for c in calls] == (
        [("vertex", account["client_email"], 200)] + [("vertex", account["client_email"], 400)] * 3)
    assert "eyJ" not in json.dumps(calls)  # no assertion is kept


def test_vertex_refuses_missing_unknown_expired_and_foreign_tokens(mock):
    _, token = vertex_access(mock, project_id="vertex-auth")
    _, expired = vertex_access(mock, project_id="vertex-auth", expires_in=0)
    path = vertex_path("vertex-auth", "rawPredict")
    for bearer, message, reason in (
            (None, "Request is missing required authentication credential.",
             "CREDENTIALS_MISSING"),
            ("ya29.unknown", "Request had invalid authentication credentials.",
             "ACCESS_TOKEN_TYPE_UNSUPPORTED"),
            (expired, "Request had invalid authentication credentials.", "ACCESS_TOKEN_EXPIRED")):
        status, headers, raw = vertex_post(mock, path, vertex_body(), bearer)
        error = json.loads(raw)["error"]
        assert status == 401 and (error["code"], error["status"]) == (401, "UNAUTHENTICATED")
        assert error["message"].startswith(message + " Expected OAuth 2 access token, login "
                                           "cookie or other valid authentication credential.")
        assert error["details"][0]["reason"] == reason
        assert headers["www-authenticate"].startswith('Bearer realm="https://accounts.google.com/"')
    status, _, raw = vertex_post(mock, vertex_path("someone-else", "rawPredict"), vertex_body(),
                                 token)
    error = json.loads(raw)["error"]
    assert status == 403 and (error["code"], error["status"]) == (403, "PERMISSION_DENIED")
    assert error["message"].startswith("Permission 'aiplatform.endpoints.predict' denied on "
                                       "resource '//aiplatform.googleapis.com/projects/"
                                       "someone-else/")
    # a streaming method answers its error as the array its answer would have been
    status, _, raw = vertex_post(mock, vertex_path("someone-else", "streamRawPredict"),
                                 vertex_body(stream=True), token)
    assert status == 403 and json.loads(raw)[0]["error"]["status"] == "PERMISSION_DENIED"


def test_vertex_raw_and_stream_raw_predict(mock):
    account, token = vertex_access(mock, project_id="vertex-api")
    status, _, raw = vertex_post(mock, vertex_path("vertex-api", "rawPredict"),
                                 vertex_body(mock={"text": "hi"}), token)
    msg = json.loads(raw)
    assert status == 200 and msg["content"] == [{"type": "text", "text": "hi"}]
    # Vertex answers with Anthropic's name of the model, and marks its ids
    assert msg["model"] == "claude-sonnet-4-5-20250929" and msg["id"].startswith("msg_vrtx_")
    status, headers, raw = vertex_post(mock, vertex_path("vertex-api", "streamRawPredict"),
                                       vertex_body(stream=True, mock={"events": 2,
                                                                      "text": "abcd"}), token)
    events = harness.parse_sse(raw)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert events[0][1]["message"]["model"] == "claude-sonnet-4-5-20250929"
    assert harness.sse_text(events) == "abcd" and events[-1][0] == "message_stop"
    # the model's own validation passes through in Anthropic's shape
    status, _, raw = vertex_post(mock, vertex_path("vertex-api", "rawPredict"),
                                 vertex_body(model="claude-sonnet-4-5"), token)
    assert status == 400 and json.loads(raw)["error"] == {
        "type": "invalid_request_error", "message": "model: Extra inputs are not permitted"}
    status, _, _ = vertex_post(mock, vertex_path("vertex-api", "rawPredict"),
                               vertex_body(stream=True), token)
    assert status == 400
    # a quota refusal is Google's own; status_for names the service account
    status, _, raw = vertex_post(mock, vertex_path("vertex-api", "rawPredict"),
                                 vertex_body(mock={"status_for": {account["client_email"]: 429}}),
                                 token)
    error = json.loads(raw)["error"]
    assert status == 429 and (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert "online_prediction_requests_per_base_model with base model: " \
           "anthropic-claude-sonnet-4-5." in error["message"]
    status, _, raw = vertex_post(mock, vertex_path("vertex-api", "streamRawPredict"),
                                 vertex_body(stream=True, mock={"status": 529}), token)
    assert status == 529 and json.loads(raw)["error"]["type"] == "overloaded_error"
    count = {"model": VERTEX_MODEL, "messages": [
        {"role": "user", "content": "mock:" + json.dumps({"usage": {"input_tokens": 17}})}]}
    status, _, raw = vertex_post(mock, vertex_path("vertex-api", "rawPredict", "count-tokens"),
                                 count, token)
    assert status == 200 and json.loads(raw) == {"input_tokens": 17}
    assert account["client_email"] in mock.stats()["max_in_flight_by_key"]


def test_service_account_token_uri_follows_the_scheme(tmp_path):
    cert = harness.make_certificate(tmp_path, "mock")
    tls_mock = harness.MockUpstream(tmp_path / "mock.log", tls=cert).start()
    try:
        account = tls_mock.service_account()
    finally:
        tls_mock.stop()
    assert tls_mock.url.startswith("https://")
    assert account["token_uri"] == tls_mock.url + "/google/token"
    assert account["project_id"].startswith("mock-project-")
