"""Hostile clients: nothing is served without a key, the gateway's balancer
cannot be reached past it, a free request rests no account, one request
takes at most one account out of service, and a request waits for its
limits before its body is read."""

import concurrent.futures
import http.client
import json
import os
import secrets
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

import harness
from harness import messages_body, within_one_minute, ANTHROPIC_VERSION


def error_of(raw):
    err = json.loads(raw)["error"]
    return err["type"], err["message"]


def test_every_path_needs_a_key(gateway):
    gw = gateway
    for method, path in (("POST", "/v1/models/x/v1/messages"), ("GET", "/v1/nothing-here"),
                         ("GET", "/v1/models"), ("GET", "/v1/models/claude"),
                         ("GET", "/v1/usage"), ("POST", "/v1/redeem"),
                         ("GET", "/v1/messages"), ("POST", "/v1/messages/count_tokens")):
        if method == "GET":
            status, _, raw = gw.get(path, key=None)
        else:
            status, _, raw = gw.post_messages(messages_body(), key=None, path=path)
        assert status == 401, (method, path, raw)
        assert error_of(raw)[0] == "authentication_error"
    assert gw.mock_requests() == []


def test_paths_are_classified_once(gateway, tenant):
    gw = gateway
    # a path ending in /v1/messages is a message request for every hook
    status, _, raw = gw.post_messages(messages_body(), key=tenant.api_key,
                                      path="/v1/models/x/v1/messages")
    assert status == 200, raw
    assert json.loads(raw)["type"] == "message"
    status, _, raw = gw.get("/v1/nothing-here", key=tenant.api_key)
    assert status == 404 and error_of(raw)[0] == "not_found_error"


def test_balancer_is_reached_only_through_the_gateway(gateway):
    gw = gateway
    gw.expect_error(r"S2A0211")
    status, _, raw = gw.post_messages(messages_body(), key=None, path="/relay/v1/messages",
                                      headers={"x-api-key": "sk-ant-client-own"})
    assert status == 500, raw
    assert error_of(raw)[0] == "api_error"
    assert gw.mock_requests() == []


def test_count_tokens_rests_no_account(gateway):
    gw = gateway
    free = gw.new_tenant(balance_usd="0", accounts=1, concurrency=4)
    paying = gw.create_key(gw.create_user(balance_usd="10")["id"], free.group["id"])
    body = {"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "mock:"
            + json.dumps({"status": 429, "usage": {"input_tokens": 3}})}]}
    status, headers, raw = gw.post_messages(body, key=free.api_key,
                                            path="/v1/messages/count_tokens")
    assert status == 429 and error_of(raw)[0] == "rate_limit_error"
    assert len(gw.mock_requests()) == 1  # no switch to another account
    state = gw.admin_ok("GET", "/admin/accounts/%d" % free.account["id"])["state"]
    assert state["rate_limited_until"] == 0
    # the account still serves messages
    status, _, raw = gw.post_messages(messages_body(), key=paying["key"])
    assert status == 200, raw


def test_count_tokens_counts_against_the_rate(gateway):
    gw = gateway
    t = gw.new_tenant(balance_usd="0")
    gw.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"rpm_limit": 1})
    body = {"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "x"}]}
    path = "/v1/messages/count_tokens"
    within_one_minute(15)
    status, _, raw = gw.post_messages(body, key=t.api_key, path=path)
    assert status == 200, raw
    status, headers, raw = gw.post_messages(body, key=t.api_key, path=path)
    assert status == 429 and "per minute" in error_of(raw)[1]
    assert int(headers["retry-after"]) >= 1


def test_one_request_takes_one_account_out(gateway):
    gw = gateway
    gw.expect_error(r"S2A020[57]")
    t = gw.new_tenant(accounts=2)
    mock = {"status_for": {t.credentials[0]: 403, t.credentials[1]: 403}}
    status, _, raw = gw.post_messages(messages_body(mock=mock), key=t.api_key)
    assert status == 502, raw
    assert len(gw.mock_requests()) == 2
    states = [gw.admin_ok("GET", "/admin/accounts/%d" % a["id"])["status"] for a in t.accounts]
    # the first to refuse is out; the second answered the same: the request is the cause
    assert sorted(states) == ["active", "error"]


@pytest.fixture
def short_wait(gateway):
    gateway.reload("Sub2apiSlotWait 1")
    yield
    gateway.reload("")


def test_limits_before_the_body(gateway, short_wait):
    """A key at its concurrency is refused before its body is read: a client
    that declares a large body and sends little gets its 429 after the wait
    for a place, not after the body's timeout."""
    gw = gateway
    t = gw.new_tenant(accounts=2)
    gw.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"concurrency": 1})
    slow = gw.hold_account(t, 4000)
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=15)
    try:
        start = time.monotonic()
        sock.sendall(("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n{\"mo"
                      % t.api_key).encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = sock.recv(4096)
            if not piece:
                break
            answer += piece
        took = time.monotonic() - start
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 429"), answer[:200]
    assert took < 3.5  # Sub2apiSlotWait, not the body's timeout
    assert slow.result()[0] == 200


def counter(gw, name):
    status, _, raw = gw.get("/metrics")
    assert status == 200, raw
    for family in text_string_to_metric_families(raw.decode()):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError("no %s in the scrape" % name)


class Client:
    """One keep-alive connection: its requests stay with one httpd child."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def models(self, key):
        self.conn.request("GET", "/v1/models", headers={"x-api-key": key,
                                                        "anthropic-version": ANTHROPIC_VERSION})
        res = self.conn.getresponse()
        res.read()
        return res.status

    def close(self):
        self.conn.close()


def random_key():
    return "sk-s2a-" + secrets.token_hex(24)


def test_strangers_cost_no_lookup_twice(gateway, tenant):
    gw = gateway
    client = Client(gw.port)
    try:
        assert client.models(tenant.api_key) == 200
        before = counter(gw, "sub2api_key_lookups_total")
        # not of the gateway's form: refused unread
        for bad in ("sk-ant-api03-" + "x" * 40, "sk-s2a-" + "Z" * 48, "x", "sk-s2a-" + "0" * 47):
            assert client.models(bad) == 401
        assert counter(gw, "sub2api_key_lookups_total") == before
        # of its form but unknown: looked up once, then remembered
        stranger = random_key()
        assert client.models(stranger) == 401
        assert client.models(stranger) == 401
        assert client.models(stranger) == 401
        assert counter(gw, "sub2api_key_lookups_total") == before + 1
    finally:
        client.close()


@pytest.fixture
def failure_limit(gateway):
    gateway.reload("Sub2apiAuthFailureLimit 5")
    yield
    gateway.reload("")


def test_failed_authentications_are_limited_per_address(gateway, tenant, failure_limit):
    gw = gateway
    address = harness.new_client_address()
    within_one_minute(20)
    blocked = counter(gw, "sub2api_auth_blocked_total")
    statuses = [gw.get("/v1/models", key=random_key(), source=address)[0] for _ in range(5)]
    assert statuses == [401] * 5
    status, headers, raw = gw.get("/v1/models", key=random_key(), source=address)
    assert status == 429 and json.loads(raw)["error"]["type"] == "rate_limit_error"
    assert 1 <= int(headers["retry-after"]) <= 61
    # the address is refused by every process, a good key included, until
    # the minute ends; other addresses are not
    for _ in range(8):
        assert gw.get("/v1/models", key=tenant.api_key, source=address)[0] == 429
    assert gw.get("/v1/models", key=tenant.api_key)[0] == 200
    assert counter(gw, "sub2api_auth_blocked_total") >= blocked + 9
    assert gw.mock_requests() == []


def rss_kb(pids):
    """The children's resident memory together; they must all still run."""
    total = 0
    for pid in pids:
        with open("/proc/%d/status" % pid) as f:
            total += sum(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return total


@pytest.fixture
def long_cache(gateway):
    # each client keeps its one connection, so its one child, throughout
    gateway.reload("Sub2apiCacheTTL 600\nMaxKeepAliveRequests 0")
    yield
    gateway.reload("")


def test_a_flood_of_random_keys(gateway, long_cache):
    """100,000 well-formed random keys: the processes stay the size they
    were, and a known key stays cached through it."""
    gw = gateway
    if gw.db != "sqlite" or os.environ.get("S2A_MODULE", "").find("/asan/") >= 0:
        pytest.skip("one configuration is enough: the caches are the same in all")
    t = gw.new_tenant()
    threads = 4
    clients = [Client(gw.port) for _ in range(threads)]
    try:
        for c in clients:
            assert c.models(t.api_key) == 200

        def flood(c, n):
            return sum(c.models(random_key()) == 401 for _ in range(n))
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            assert sum(pool.map(flood, clients, [2000] * threads)) == 2000 * threads
        # the generation before the reload is gone by now
        pids = gw.child_pids()
        warm = rss_kb(pids)
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            assert sum(pool.map(flood, clients, [23000] * threads)) == 23000 * threads
        after = rss_kb(pids)
        assert after <= warm * 1.10, (warm, after)
        lookups = counter(gw, "sub2api_key_lookups_total")
        for c in clients:
            assert c.models(t.api_key) == 200
        assert counter(gw, "sub2api_key_lookups_total") == lookups
    finally:
        for c in clients:
            c.close()


def test_redeem_codes_cannot_be_guessed_at_speed(gateway):
    gw = gateway
    t = gw.new_tenant(balance_usd="0")
    guesses = 0
    while True:
        status, headers, raw = gw.post_messages({"code": "rc-" + secrets.token_hex(16)},
                                                key=t.api_key, path="/v1/redeem")
        guesses += 1
        if status != 404:
            break
    # ten a minute per key (twenty, should the clock minute turn meanwhile)
    assert status == 429 and 11 <= guesses <= 21, (status, guesses, raw)
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"
    assert int(headers["retry-after"]) >= 1
    # the key may still read its standing
    status, _, _ = gw.get("/v1/usage", key=t.api_key)
    assert status == 200


def test_a_slow_upload_is_bounded(gateway):
    """A body that trickles in ends with 408 when mod_reqtimeout says so
    (RequestReadTimeout body=3 here), and the key's place it held is back."""
    gw = gateway
    t = gw.new_tenant()
    gw.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"concurrency": 1})
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
    try:
        start = time.monotonic()
        sock.sendall(("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                      % t.api_key).encode())
        answer = b""
        for _ in range(30):
            sock.sendall(b" ")
            try:
                sock.settimeout(1)
                piece = sock.recv(4096)
            except socket.timeout:
                continue
            except ConnectionError:
                break
            if not piece:
                break
            answer += piece
            if b"\r\n\r\n" in answer:
                break
        took = time.monotonic() - start
    finally:
        sock.close()
    assert took < 12, took
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
    # its place is back: the key serves again at once
    status, _, raw = gw.post_messages(messages_body(), key=t.api_key)
    assert status == 200, raw


def raw_exchange(gw, data):
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    try:
        sock.sendall(data)
        answer = b""
        while True:
            piece = sock.recv(65536)
            if not piece:
                return answer
            answer += piece
    finally:
        sock.close()


def test_httpds_own_errors_are_anthropic_shaped(gateway):
    """Errors httpd meets before it knows the location (an unreadable
    request line, too many headers) answer in the API's shape through the
    ErrorDocument that names SetHandler sub2api-error."""
    gw = gateway
    gw.expect_error(r"AH00566|AH00567|AH10173|AH00565|AH02426|AH00126|request line|header")
    many = "".join("x-h%d: v\r\n" % i for i in range(120))
    for data in (b"GARBAGE\r\n\r\n",
                 ("POST /v1/messages HTTP/1.1\r\nHost: x\r\n%s\r\n" % many).encode()):
        answer = raw_exchange(gw, data)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), answer[:300]
        assert b"application/json" in head
        error = json.loads(body)
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"


def test_secrets_are_sealed_for_their_account(gateway):
    """Fixed headers are sealed at rest like credentials and masked in
    answers; a sealed credential copied into another account's row does not
    open there, so that account does not serve."""
    gw = gateway
    gw.expect_error(r"S2A0102")
    t = gw.new_tenant(accounts=0)
    one = gw.create_account([t.group["id"]], headers={"x-team": "team-secret-4242"})
    assert one["headers"]["x-team"] != "team-secret-4242"
    assert "team-secret-4242" not in json.dumps(one)
    [(stored_headers, stored_cred)] = gw.db_query(
        "SELECT headers, credential FROM s2a_accounts WHERE id = %d" % one["id"])
    assert "team-secret-4242" not in stored_headers
    assert gw.credentials[one["id"]] not in stored_cred
    status, _, raw = gw.post_messages(messages_body(), key=t.api_key)
    assert status == 200, raw
    assert gw.mock_requests()[-1]["headers"].get("x-team") == "team-secret-4242"

    other = gw.create_account([gw.create_group()["id"]])
    gw.db_write("UPDATE s2a_accounts SET credential = (SELECT credential FROM s2a_accounts"
                " WHERE id = %d) WHERE id = %d" % (one["id"], other["id"]))
    shown = gw.admin_ok("GET", "/admin/accounts/%d" % other["id"])
    assert shown["credential"] == "(sealed with another key)"
    # the catalog reloads (an admin change moves the generation) and passes it over
    gw.admin_ok("PATCH", "/admin/accounts/%d" % one["id"], {"priority": 60})
    t2 = gw.new_tenant(accounts=0)
    gw.admin_ok("PATCH", "/admin/accounts/%d" % other["id"], {"group_ids": [t2.group["id"]]})
    status, _, raw = gw.post_messages(messages_body(), key=t2.api_key)
    assert status == 503, raw
    # writing the credential anew seals it for this account: it serves
    gw.admin_ok("PATCH", "/admin/accounts/%d" % other["id"], {"credential": "sk-ant-api03-fresh"})
    status, _, raw = gw.post_messages(messages_body(), key=t2.api_key)
    assert status == 200, raw
