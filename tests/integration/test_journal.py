"""The database going away under traffic: clients keep getting answers (keys
and accounts known before serve on), the usage rows wait in the journal
file, and once the database is back each row is written exactly once, with
its deduction."""

import concurrent.futures
import http.client
import json
import sqlite3
import time

import pytest

import harness
from harness import messages_body


@pytest.fixture
def pg_gateway(gateway):
    if not gateway.pg:
        pytest.skip("SQLite lives in the gateway's own files: it cannot go away")
    # mod_dbd and the writer say so while PostgreSQL is down
    # (a child httpd starts meanwhile fails to open its connection pool: AH00636)
    gateway.expect_error(r"AH00629|AH00633|AH00635|AH00636|S2A0307|mod_dbd|dbd_pgsql|connection")
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


REFUSED_TOKENS = 4242


@pytest.fixture
def refusing_database(gateway):
    """The database refuses usage rows of REFUSED_TOKENS input tokens, as it
    would a row it cannot store (an encoding it does not take, a number out
    of its range)."""
    if gateway.pg:
        gateway.pg.psql(
            "CREATE FUNCTION s2a_test_refuse() RETURNS trigger AS $$ BEGIN"
            " IF NEW.input_tokens = %d THEN RAISE EXCEPTION 'refused for the test'; END IF;"
            " RETURN NEW; END $$ LANGUAGE plpgsql;"
            " CREATE TRIGGER s2a_test_refuse BEFORE INSERT ON s2a_usage"
            " FOR EACH ROW EXECUTE FUNCTION s2a_test_refuse();" % REFUSED_TOKENS)
    else:
        con = sqlite3.connect(str(gateway.sqlite_path), timeout=10)
        con.execute("CREATE TRIGGER s2a_test_refuse BEFORE INSERT ON s2a_usage"
                    " WHEN NEW.input_tokens = %d BEGIN SELECT RAISE(ABORT, 'refused for the"
                    " test'); END" % REFUSED_TOKENS)
        con.commit()
        con.close()
    gateway.expect_error(r"S2A0310|S2A0301")
    yield gateway
    if gateway.pg:
        gateway.pg.psql("DROP TRIGGER s2a_test_refuse ON s2a_usage;"
                        " DROP FUNCTION s2a_test_refuse();")
    else:
        con = sqlite3.connect(str(gateway.sqlite_path), timeout=10)
        con.execute("DROP TRIGGER s2a_test_refuse")
        con.commit()
        con.close()


def test_a_key_never_seen_while_the_database_is_away_is_told_to_retry(pg_gateway):
    """A key no process knows yet cannot be checked without the database:
    503 with retry-after, as for an outage of seconds, never 500."""
    gw = pg_gateway
    gw.expect_error(r"S2A0202")
    t = gw.new_tenant()
    gw.pg.stop()
    try:
        status, headers, raw = gw.post_messages(messages_body(), key=t.api_key)
    finally:
        gw.pg.resume()
    assert status == 503, raw
    assert headers["retry-after"] == "1"
    assert json.loads(raw)["error"]["type"] == "overloaded_error"
    assert gw.mock_requests() == []


def test_a_refused_row_is_set_apart(refusing_database):
    """A row the database refuses fails its batch: it is tried alone, set
    apart in the journal's .refused file, and the rows batched with it are
    written; the next batches go on."""
    gw = refusing_database
    t = gw.new_tenant(balance_usd="5")

    def send(tokens):
        body = messages_body(mock={"usage": {"input_tokens": tokens, "output_tokens": 10}})
        return gw.post_messages(body, key=t.api_key)[0]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(send, [100, REFUSED_TOKENS, 101]))
    assert statuses == [200, 200, 200]
    rows = gw.wait_usage({"key_id": t.key["id"]}, count=2)
    time.sleep(0.5)
    rows = gw.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"]
    assert sorted(r["input_tokens"] for r in rows) == [100, 101]
    wait_log(gw, "S2A0310")
    log = gw.error_log(gw.test_offset)
    refused = [line for line in log.splitlines() if "S2A0310" in line][0]
    assert "refused for the test" in refused
    path = refused.rsplit(" kept in ", 1)[1].strip()
    kept = open(path).read()
    assert kept.count("\n") >= 1 and "\t%d\t" % REFUSED_TOKENS in kept
    # the writer goes on
    assert send(102) == 200
    gw.wait_usage({"key_id": t.key["id"]}, count=3)
