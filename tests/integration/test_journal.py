"""The database going away under traffic: clients keep getting answers (keys
and accounts known before serve on), the usage rows wait in the journal
file, and once the database is back each row is written exactly once, with
its deduction."""

import http.client
import json
import time

import pytest

import harness
from harness import messages_body


@pytest.fixture
def pg_gateway(gateway):
    if not gateway.pg:
        pytest.skip("SQLite lives in the gateway's own files: it cannot go away")
    # mod_dbd and the writer say so while PostgreSQL is down
    gateway.expect_error(r"AH00629|AH00633|AH00635|S2A0307|mod_dbd|dbd_pgsql|connection")
    yield gateway
    if not gateway.pg.started:
        gateway.pg.resume()


def wait_log(gw, text, timeout=15):
    deadline = time.monotonic() + timeout
    while text not in gw.error_log(gw.test_offset):
        assert time.monotonic() < deadline, "no %r in the error log" % text
        time.sleep(0.1)


def test_rows_kept_while_database_away_are_written_once(pg_gateway):
    gw = pg_gateway
    t = gw.new_tenant(balance_usd="5")
    start = gw.admin_ok("GET", "/admin/users/%d" % t.user["id"])["balance_nanousd"]
    usage = {"input_tokens": 1000, "output_tokens": 200}
    # One kept-alive connection: one httpd process, which knows the key and the
    # accounts from the first request and answers without the database, also
    # past Sub2apiCacheTTL (5 s).
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)

    def send(text, stream):
        body = messages_body(text, stream=stream, mock={"usage": usage})
        conn.request("POST", "/v1/messages", body=json.dumps(body),
                     headers={"x-api-key": t.api_key, "content-type": "application/json",
                              "anthropic-version": harness.ANTHROPIC_VERSION})
        resp = conn.getresponse()
        raw = resp.read()
        assert resp.status == 200, raw
        assert (b"event: message_stop" in raw) if stream else b'"usage"' in raw

    send("before", False)
    gw.pg.stop()
    for i in range(6):
        send("while away %d" % i, bool(i % 2))
        time.sleep(1.2)  # the last ones come after the cache expired
    conn.close()
    wait_log(gw, "S2A0304")
    assert "usage rows kept in" in gw.error_log(gw.test_offset)

    gw.pg.resume()
    gw.wait_usage({"key_id": t.key["id"]}, count=7, timeout=30)
    wait_log(gw, "S2A0305")
    rows = gw.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"]
    assert len(rows) == 7
    assert len({(r["request_id"], r["attempt"]) for r in rows}) == 7
    assert all(r["input_tokens"] == 1000 and r["output_tokens"] == 200 and
               r["actual_cost_nanousd"] > 0 for r in rows)
    after = gw.admin_ok("GET", "/admin/users/%d" % t.user["id"])["balance_nanousd"]
    assert after == start - sum(r["actual_cost_nanousd"] for r in rows)
    # the journal was emptied: nothing comes a second time
    time.sleep(6)
    assert len(gw.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"]) == 7
    assert gw.admin_ok("GET", "/admin/users/%d" % t.user["id"])["balance_nanousd"] == after
