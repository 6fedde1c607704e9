"""Per-account egress: each account's requests leave through the forward
proxy it names (real tinyproxy instances, whose logs show what they
carried), others directly; an https upstream is reached through CONNECT;
a proxy's credentials go to the proxy and never upstream; a dead proxy
makes its account fail over like a dead endpoint."""
import json
import time
import shutil

import pytest

import harness
from harness import messages_body


@pytest.fixture(scope="module")
def egress(mock_upstreams):
    if not harness.TinyProxy.available():
        pytest.fail("tinyproxy is needed (Debian's tinyproxy package)", pytrace=False)
    root = harness.new_root("s2a-egress-")
    cert, key = harness.make_certificate(root, "upstream")
    tls_mock = harness.MockUpstream(root / "tls-mock.log", tls=(cert, key)).start()
    p1 = harness.TinyProxy(root / "p1").start()
    p2 = harness.TinyProxy(root / "p2", credentials=("gw", "s3cret-proxy-pw")).start()
    gw = harness.Gateway(root / "gw", "sqlite", mock_upstreams, extra_conf=(
        'LoadModule ssl_module "%s/mod_ssl.so"\n'
        "SSLProxyEngine on\n"
        'SSLProxyCACertificateFile "%s"\n'
        '<Proxy "balancer://anthropic">\n'
        '    BalancerMember "%s" retry=0\n'
        "</Proxy>\n"
        # token refreshes over HTTPS, as the real endpoint is
        'Sub2apiOAuthTokenURL "%s/v1/oauth/token"\n'
        'Sub2apiOAuthCAFile "%s"\n' % (harness.APACHE_MODULES, cert, tls_mock.url,
                                       tls_mock.url, cert)))
    gw.start()
    offset = gw.log_offset()
    try:
        yield gw, p1, p2, tls_mock
    finally:
        gw.stop()
        for server in (p1, p2, tls_mock):
            server.stop()
        bad = gw.bad_log_lines(offset)
        shutil.rmtree(root, ignore_errors=True)
        assert bad == [], "unexpected error-log lines:\n%s" % "\n".join(bad)


def carried_by(proxy, port):
    return [line for line in proxy.carried() if ":%d" % port in line]


def test_each_account_leaves_through_its_own_proxy(egress):
    gw, p1, p2, _ = egress
    gw.mock_clear()
    a = gw.new_tenant(egress=p1.url)
    b = gw.new_tenant(egress=p2.url)
    c = gw.new_tenant()
    shown = gw.admin_ok("GET", "/admin/accounts/%d" % b.account["id"])["egress"]
    assert shown == "http://gw:***@127.0.0.1:%d" % p2.port  # the password never shows
    port = gw.mock.port
    before1, before2 = len(carried_by(p1, port)), len(carried_by(p2, port))
    for tenant, n in ((a, 3), (b, 2), (c, 4)):
        for _ in range(n):
            status, _, raw = gw.post_messages(messages_body(), key=tenant.api_key)
            assert status == 200, raw
        res = gw.stream_messages(messages_body(stream=True), key=tenant.api_key)
        assert res.status == 200 and res.events[-1][0] == "message_stop"
    # A's four requests went through P1, B's three through P2, C's through neither
    assert len(carried_by(p1, port)) - before1 == 4
    assert len(carried_by(p2, port)) - before2 == 3
    assert all(line.startswith("POST http://127.0.0.1:%d/v1/messages" % port)
               for line in carried_by(p1, port)[before1:])
    upstream = gw.mock_requests()
    assert len(upstream) == 12
    # the proxy's credentials went to P2 alone, never to the upstream
    assert all("proxy-authorization" not in r["headers"] for r in upstream)
    assert "s3cret-proxy-pw" not in json.dumps(upstream)
    rows = gw.wait_usage({"key_id": b.key["id"]}, count=3)
    assert len(rows) == 3 and {r["account_id"] for r in rows} == {b.account["id"]}


def test_https_upstream_through_connect(egress):
    gw, _, p2, tls_mock = egress
    t = gw.new_tenant(egress=p2.url, endpoint=tls_mock.url)
    tls_mock.clear()
    status, _, raw = gw.post_messages(messages_body(), key=t.api_key)
    assert status == 200, raw
    # P2 tunnelled it (CONNECT, its credentials checked); the upstream saw TLS traffic only
    assert carried_by(p2, tls_mock.port)[-1].startswith("CONNECT 127.0.0.1:%d" % tls_mock.port)
    [request] = tls_mock.requests()
    assert request["path"] == "/v1/messages"
    assert "proxy-authorization" not in request["headers"]
    assert t.credential in (request["headers"].get("x-api-key"),)


def test_a_dead_proxy_fails_over_like_a_dead_endpoint(egress):
    gw, _, _, _ = egress
    gw.expect_error(r"S2A0207|AH00957|AH01114")
    dead = "http://127.0.0.1:%d" % harness.free_port()
    t = gw.new_tenant(accounts=0)
    behind = gw.create_account([t.group["id"]], egress=dead, priority=1)
    direct = gw.create_account([t.group["id"]], priority=50)
    status, _, raw = gw.post_messages(messages_body(), key=t.api_key)
    assert status == 200, raw
    [row] = gw.wait_usage({"key_id": t.key["id"]})
    assert row["account_id"] == direct["id"] and row["attempt"] == 2
    assert behind["id"] != direct["id"]


def test_token_refresh_leaves_through_the_egress(egress):
    gw, p1, _, tls_mock = egress
    tls_mock.clear()
    t = gw.new_tenant(accounts=0)
    old = "sk-ant-oat01-old-" + gw.unique("e")
    gw.create_account([t.group["id"]], type="oauth", credential=old, egress=p1.url,
                      refresh_token="sk-ant-ort01-" + gw.unique("r"),
                      expires_at=int(time.time()) + 60)
    before = len(p1.carried())
    status, _, raw = gw.post_messages(messages_body(), key=t.api_key)
    assert status == 200, raw
    carried = p1.carried()[before:]
    # the refresh went to the HTTPS token endpoint through P1's tunnel
    assert carried[0].startswith("CONNECT 127.0.0.1:%d " % tls_mock.port)
    assert len(tls_mock.token_calls()) == 1
    assert "POST http://127.0.0.1:%d/v1/messages HTTP/1.1" % gw.mock.port in carried
    assert gw.mock_requests()[-1]["headers"]["authorization"][7:] != old
