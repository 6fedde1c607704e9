"""Two gateways in one httpd, as httpd.conf.sample lays them out: each
virtual host has its own database, keys, accounts and balancer; neither
knows the other's keys, and the metrics name each."""
import secrets

import pytest
from prometheus_client.parser import text_string_to_metric_families

import harness
from harness import messages_body


@pytest.fixture
def second_host(gateway):
    """A second virtual host on a port of its own, with a SQLite database of
    its own whatever the first one's database is."""
    port = harness.free_port()
    token = "s2a-admin-" + secrets.token_hex(16)
    db_dir = harness.make_dir(gateway.root / ("second-%d" % port), 0o777, harness.HTTPD_USER)
    db = db_dir / "second.sqlite"
    db.touch()
    harness.give_to(db, harness.HTTPD_USER)
    gateway.reload("""
Listen 127.0.0.1:%(port)d
<VirtualHost 127.0.0.1:%(port)d>
    ServerName second.test
    DBDriver sqlite3
    DBDParams "%(db)s"
    Sub2apiAdminToken "%(token)s"
    <Proxy "balancer://second">
        BalancerMember "%(upstream)s"
        ProxySet lbmethod=sub2api
    </Proxy>
    <Location "/v1/">
        Sub2apiGateway balancer://second
    </Location>
    <Location "/admin/">
        SetHandler sub2api-admin
    </Location>
    <Location "/metrics">
        SetHandler sub2api-metrics
    </Location>
</VirtualHost>
""" % {"port": port, "db": db, "token": token, "upstream": gateway.mock.url})
    yield gateway.virtual_host(port, token)
    gateway.reload("")


def test_two_virtual_hosts_keep_apart(gateway, second_host):
    first, second = gateway, second_host
    a = first.new_tenant()
    b = second.new_tenant()
    # each serves its own key through its own account
    for host, tenant in ((first, a), (second, b)):
        status, _, raw = host.post_messages(messages_body(), key=tenant.api_key)
        assert status == 200, raw
        assert host.mock_requests()[-1]["headers"]["x-api-key"] == tenant.credential
        assert host.wait_usage({"key_id": tenant.key["id"]})[0]["status"] == 200
    # and refuses the other's
    for host, tenant in ((first, b), (second, a)):
        status, _, raw = host.post_messages(messages_body(), key=tenant.api_key)
        assert status == 401, raw
    # neither admin API takes the other's token or knows its rows
    assert first.admin("GET", "/admin/users", token=second.admin_token)[0] == 401
    assert second.admin("GET", "/admin/users", token=first.admin_token)[0] == 401
    names = [u["name"] for u in second.admin_ok("GET", "/admin/users")["data"]]
    assert names == [b.user["name"]]
    # the metrics label each gateway's series with its virtual host
    status, _, raw = harness.http_request(second.port, "GET", "/metrics")
    assert status == 200
    servers = {s.labels["server"] for f in text_string_to_metric_families(raw.decode())
               for s in f.samples if "server" in s.labels}
    assert "second.test:%d" % second.port in servers and len(servers) >= 2, servers
