"""Graceful restart under load (`apachectl -k graceful`, SIGUSR1): the old
generation of processes finishes what it carries while the new one serves
new requests. No stream is dropped, no usage row is lost or written twice,
and every balance ends at its start minus its rows, also when the usage
writer still holds rows it could not store yet; the places requests hold on
an account still count."""

import concurrent.futures
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import conftest
import harness
from harness import messages_body

STREAMS = 200
QUEUED = 100
TIMEOUT = 300
USAGE = {"input_tokens": 1200, "output_tokens": 300, "cache_read_input_tokens": 40,
         "cache_creation_input_tokens": 20}
# nano-USD of USAGE at the test price table's claude-sonnet-4 prices, multiplier 1
COST = 1200 * 3000 + 300 * 15000 + 40 * 300 + 20 * 3750
# events before the upstream pauses: message_start, content_block_start, ping
# and the first text delta
FIRST_EVENTS = 4
DELTAS = 6

# Room for 200 streams of the old generation and the workers of the new one
# at once (ServerLimit and ThreadLimit cannot change at a graceful restart,
# so the suite's 4 x 25 threads cannot be raised for this test alone);
# streams paused upstream must not hit the proxy's idle timeout. The
# pseudonym key comes from a file: a new process then writes nothing to the
# database before it serves (the SQLite write lock below would stall it).
# A full account answers 429 after a second.
ROOMY = """
StartServers 3
ServerLimit 8
ThreadLimit 100
ThreadsPerChild 100
MinSpareThreads 50
MaxSpareThreads 300
MaxRequestWorkers 300
Timeout %d
Sub2apiUserIdSecretFile "%%s"
Sub2apiSlotWait 1
""" % TIMEOUT
# what the restart changes, visibly: a smaller request body cap
SMALLER_BODIES = """
<Location "/v1/">
    Sub2apiMaxBodySize 65536
</Location>
"""


@pytest.fixture(scope="module", params=list(conftest.CONFIGS))
def gateway(request, mock_upstreams):
    """The suite's gateway with the roomier process limits above, one per
    configuration (it replaces the session-wide one for this module)."""
    def configure(gw, root):
        (root / "user-id.key").write_text(os.urandom(24).hex() + "\n")
        gw.extra_conf = roomy(gw)

    yield from conftest.serve_gateway(request, mock_upstreams, "restart-", configure)


def roomy(gw):
    return ROOMY % (gw.root / "user-id.key")


def children(pid):
    """Process ids whose parent is pid (httpd's child processes)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def wait_gone(pids, timeout=120):
    """Wait until none of pids is alive (the old generation has exited)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = {p for p in pids if Path("/proc/%d" % p).exists()}
        if not alive:
            return
        assert time.monotonic() < deadline, "old httpd processes still alive: %s" % alive
        time.sleep(0.1)


def gate(mock, name, action="GET"):
    status, _, raw = harness.http_request(mock.port, action, "/_mock/gates/" + name)
    assert status == 200, raw
    return json.loads(raw)


def wait_at_gate(mock, name, count, futures):
    """Wait until `count` requests are paused at the mock's gate; fail early
    when a request already ended."""
    deadline = time.monotonic() + TIMEOUT
    while gate(mock, name)["waiting"] < count:
        ended = [f for f in futures if f.done()]
        assert not ended, "a request ended before the gate opened: %r" % (ended[0].result(),)
        assert time.monotonic() < deadline, gate(mock, name)
        time.sleep(0.1)


def send(gw, key, body, first_events=None, arrived=None):
    """POST /v1/messages: (status, request id, raw body). For a stream,
    arrived is set once first_events whole events came."""
    if body.get("stream"):
        res = gw.stream_messages(body, key=key, timeout=TIMEOUT, arrived=arrived,
                                 arrived_after_events=first_events or 1)
        return res.status, res.headers.get("x-sub2api-request-id"), res.raw
    status, headers, raw = gw.post_messages(body, key=key, timeout=TIMEOUT)
    return status, headers.get("x-sub2api-request-id"), raw


def usage_rows(gw, key_id):
    return gw.admin_ok("GET", "/admin/usage?key_id=%d&limit=10000" % key_id)["data"]


def balance(gw, user_id):
    return gw.admin_ok("GET", "/admin/users/%d" % user_id)["balance_nanousd"]


def wait_journals_empty(gw, timeout=120):
    """Wait until no usage row waits in a journal file for the database."""
    deadline = time.monotonic() + timeout
    while any(p.stat().st_size for p in gw.httpd.run_dir.glob("sub2api-usage-*.journal")):
        assert time.monotonic() < deadline, "usage rows still in the journal"
        time.sleep(0.2)


def assert_billed_once(gw, tenant, start, request_ids, old):
    """Once the old processes are gone (their queues written, or journaled
    and replayed), exactly one ok row per request id, each with the tokens the
    upstream reported, and the balance down by their sum."""
    wait_gone(old)
    wait_journals_empty(gw)
    rows = gw.wait_usage({"key_id": tenant.key["id"], "limit": 10000},
                         count=len(request_ids), timeout=120)
    assert len(rows) == len(request_ids)
    assert sorted(r["request_id"] for r in rows) == sorted(request_ids)
    for r in rows:
        assert r["outcome"] == "ok" and r["status"] == 200 and r["attempt"] == 1, r
        assert (r["input_tokens"], r["output_tokens"], r["cache_read_tokens"],
                r["cache_creation_tokens"]) == (1200, 300, 40, 20), r
        assert r["actual_cost_nanousd"] == COST, r
    assert balance(gw, tenant.user["id"]) == start - len(request_ids) * COST


STREAM_EVENTS = (["message_start", "content_block_start", "ping"]
                 + ["content_block_delta"] * DELTAS
                 + ["content_block_stop", "message_delta", "message_stop"])


def test_graceful_restart_keeps_every_stream_and_row(gateway):
    """200 streams open across the restart each end with their whole text and
    are billed once; the new generation, with the new configuration, serves
    new requests meanwhile; the old processes leave when their streams end."""
    gw = gateway
    t = gw.new_tenant(balance_usd="100", concurrency=1000)
    probe = gw.new_tenant(balance_usd="10", concurrency=1000)
    start = balance(gw, t.user["id"])
    texts = ["Stream %03d: the quick brown fox jumps over the lazy dog." % i
             for i in range(STREAMS)]
    arrived = [threading.Event() for _ in range(STREAMS)]
    mock = {"gate": "restart", "gate_after": FIRST_EVENTS, "events": DELTAS,
            "event_delay_ms": 50, "usage": USAGE}
    with concurrent.futures.ThreadPoolExecutor(STREAMS) as pool:
        try:
            futures = [pool.submit(send, gw, t.api_key,
                                   messages_body(stream=True, mock=dict(mock, text=texts[i])),
                                   FIRST_EVENTS, arrived[i]) for i in range(STREAMS)]
            wait_at_gate(gw.mock, "restart", STREAMS, futures)
            deadline = time.monotonic() + TIMEOUT
            while not all(e.is_set() for e in arrived):
                assert time.monotonic() < deadline, "%d streams got their first events" % sum(
                    e.is_set() for e in arrived)
                time.sleep(0.1)
            old = children(gw.httpd.proc.pid)

            gw.reload(roomy(gw) + SMALLER_BODIES)
            # the new generation serves, with the new configuration
            status, _, raw = gw.post_messages(messages_body("after the restart"),
                                              key=probe.api_key)
            assert status == 200, raw
            res = gw.stream_messages(messages_body("a new stream"), key=probe.api_key)
            assert res.status == 200 and res.events[-1][0] == "message_stop", res.raw
            status, _, raw = gw.post_messages(harness.body_of_size(100000), key=probe.api_key)
            assert status == 413, raw
            assert not any(f.done() for f in futures), "a stream ended before the gate opened"
            assert gate(gw.mock, "restart")["waiting"] == STREAMS
        finally:
            gate(gw.mock, "restart", "POST")
        results = [f.result(timeout=TIMEOUT) for f in futures]

    for text, (status, rid, raw) in zip(texts, results):
        assert status == 200 and rid, raw
        assert raw.endswith(b"\n\n"), raw[-200:]
        events = harness.parse_sse(raw)
        assert [n for n, _ in events] == STREAM_EVENTS, raw
        assert all(isinstance(d, dict) and d["type"] == n for n, d in events), raw
        assert harness.sse_text(events) == text
        assert events[-2][1]["usage"]["output_tokens"] == 300
    assert_billed_once(gw, t, start, [rid for _, rid, _ in results], old)


class WriteLock:
    """Holds the usage writer back from a process of its own: the user's row
    locked in an open transaction (PostgreSQL), or the database's write lock
    (SQLite, taken as httpd's user so no file of the database changes owner)."""

    SQLITE = ("import sqlite3, sys\n"
              "con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\n"
              "con.execute('BEGIN IMMEDIATE')\n"
              "print('locked', flush=True)\n"
              "sys.stdin.read()\n"
              "con.execute('COMMIT')\n")

    def __init__(self, gw, user_id):
        if gw.pg:
            cmd = [harness.PG_BIN + "/psql", "-h", "127.0.0.1", "-p", str(gw.pg.port),
                   "-U", gw.pg.user, "-d", gw.pg.dbname, "-qAt", "-v", "ON_ERROR_STOP=1"]
            owner = "postgres"
            script = "BEGIN;\nSELECT 'locked' FROM s2a_users WHERE id = %d FOR UPDATE;\n" % user_id
        else:
            cmd = [sys.executable, "-c", self.SQLITE, str(gw.sqlite_path)]
            owner = harness.HTTPD_USER
            script = ""
        if harness.is_root():
            cmd = ["runuser", "-u", owner, "--"] + cmd
        self.pg = bool(gw.pg)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd="/")
        self.proc.stdin.write(script)
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "locked":
            self.proc.kill()
            raise harness.HarnessError("no lock taken: %r" % line)

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("COMMIT;\n" if self.pg else "")
            self.proc.stdin.close()
            self.proc.wait(60)
        assert self.proc.returncode == 0


def test_rows_queued_at_a_graceful_restart_are_written(gateway):
    """100 answers whose rows the writer cannot store yet, then a graceful
    restart: the old processes keep the rows until the database takes them,
    and each is written once with its deduction."""
    gw = gateway
    t = gw.new_tenant(balance_usd="100", concurrency=1000)
    start = balance(gw, t.user["id"])
    body = messages_body("queued", mock={"gate": "answers", "usage": USAGE})
    with concurrent.futures.ThreadPoolExecutor(QUEUED) as pool:
        try:
            futures = [pool.submit(send, gw, t.api_key, body) for _ in range(QUEUED)]
            # all past the gateway's own database reads, waiting for the upstream
            wait_at_gate(gw.mock, "answers", QUEUED, futures)
            lock = WriteLock(gw, t.user["id"])
        finally:
            gate(gw.mock, "answers", "POST")
        try:
            results = [f.result(timeout=TIMEOUT) for f in futures]
            assert all(status == 200 and rid for status, rid, _ in results), results[:3]
            old = children(gw.httpd.proc.pid)
            gw.reload()
            # the new generation serves; the rows still wait
            assert usage_rows(gw, t.key["id"]) == []
        finally:
            lock.release()
    assert_billed_once(gw, t, start, [rid for _, rid, _ in results], old)


def test_places_held_across_a_graceful_restart_still_count(gateway):
    """An account with concurrency 1 carrying a stream across the restart
    stays full for the new generation (429, the upstream never sees two
    requests at once), and is free again once the old process gave the place
    back."""
    gw = gateway
    t = gw.new_tenant(balance_usd="10", concurrency=1)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            held = pool.submit(send, gw, t.api_key,
                               messages_body(stream=True, mock={"gate": "held"}))
            wait_at_gate(gw.mock, "held", 1, [held])
            status, _, raw = gw.post_messages(messages_body("before"), key=t.api_key)
            assert status == 429, raw
            old = children(gw.httpd.proc.pid)
            gw.reload()
            status, _, raw = gw.post_messages(messages_body("after"), key=t.api_key)
            assert status == 429, raw
        finally:
            gate(gw.mock, "held", "POST")
        status, _, raw = held.result(timeout=TIMEOUT)
    assert status == 200 and raw.endswith(b"event: message_stop\ndata: "
                                          b'{"type": "message_stop"}\n\n'), raw
    assert gw.mock.stats()["max_in_flight_by_key"][t.credential] == 1
    wait_gone(old)
    status, _, raw = gw.post_messages(messages_body("freed"), key=t.api_key)
    assert status == 200, raw
