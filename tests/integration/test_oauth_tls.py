"""The token endpoint over HTTPS, as the real one is: libcurl verifies its
certificate against Sub2apiOAuthCAFile and the host it names; a certificate
of another CA is refused before any refresh token is sent."""
import json
import secrets
import shutil
import time

import pytest

import harness
from harness import messages_body


@pytest.fixture(scope="module")
def tls_endpoint():
    """A mock upstream serving HTTPS (its token endpoint), and the CA it
    does not use."""
    root = harness.new_root("s2a-oauth-tls-")
    cert, key = harness.make_certificate(root, "endpoint")
    other, _ = harness.make_certificate(root, "other")
    mock = harness.MockUpstream(root / "mock.log", tls=(cert, key)).start()
    try:
        yield mock, cert, other
    finally:
        mock.stop()
        shutil.rmtree(root, ignore_errors=True)


def oauth_gateway(mock_upstreams, endpoint, ca):
    root = harness.new_root("s2a-oauth-tls-gw-")
    gw = harness.Gateway(root, "sqlite", mock_upstreams, extra_conf=(
        'Sub2apiOAuthTokenURL "%s/v1/oauth/token"\nSub2apiOAuthCAFile "%s"\n'
        % (endpoint.url, ca)))
    return gw, root


def expiring_account(gw):
    t = gw.new_tenant(accounts=0)
    t.old = "sk-ant-oat01-old-" + secrets.token_hex(12)
    t.account = gw.create_account([t.group["id"]], type="oauth", credential=t.old,
                                  refresh_token="sk-ant-ort01-" + secrets.token_hex(12),
                                  expires_at=int(time.time()) + 60)
    return t


def test_refresh_over_https(mock_upstreams, tls_endpoint):
    endpoint, cert, _ = tls_endpoint
    assert endpoint.url.startswith("https://")
    gw, root = oauth_gateway(mock_upstreams, endpoint, cert)
    gw.start()
    try:
        endpoint.clear()
        t = expiring_account(gw)
        status, _, raw = gw.post_messages(messages_body(), key=t.api_key)
        assert status == 200, raw
        # the new token came from the HTTPS endpoint and went upstream
        [call] = endpoint.token_calls()
        assert json.loads(call["body"])["grant_type"] == "refresh_token"
        sent = gw.mock_requests()[-1]["headers"]["authorization"][7:]
        assert sent.startswith("sk-ant-oat01-mock-") and sent != t.old
    finally:
        gw.stop()
        bad = gw.bad_log_lines(0)
        shutil.rmtree(root, ignore_errors=True)
    assert bad == []


def test_a_certificate_of_another_ca_is_refused(mock_upstreams, tls_endpoint):
    endpoint, _, other = tls_endpoint
    gw, root = oauth_gateway(mock_upstreams, endpoint, other)
    gw.expect_error(r"S2A0501: account \d+ token refresh failed: .*(certificate|SSL)")
    gw.start()
    try:
        endpoint.clear()
        t = expiring_account(gw)
        # the old token still works: the request goes on with it
        status, _, raw = gw.post_messages(messages_body(), key=t.api_key)
        assert status == 200, raw
        assert gw.mock_requests()[-1]["headers"]["authorization"][7:] == t.old
        assert endpoint.token_calls() == []  # nothing reached the endpoint's handler
    finally:
        gw.stop()
        bad = gw.bad_log_lines(0)
        shutil.rmtree(root, ignore_errors=True)
    assert bad == []
