"""Two httpd nodes on two ports sharing one PostgreSQL and one Redis, as a
load-balanced deployment runs: a conversation's binding, the limits of keys,
users and accounts, and an account's cooldown hold across both."""

import concurrent.futures
import json
import shutil
import time

import pytest

import harness
from harness import messages_body


@pytest.fixture(scope="module")
def nodes(request, mock_upstreams):
    if not harness.Postgres.available() or not harness.Redis.available():
        pytest.fail("PostgreSQL and redis-server are needed", pytrace=False)
    root = harness.new_root("s2a-nodes-")
    started = []
    try:
        a = harness.Gateway(root / "a", "pgsql", mock_upstreams, store="redis",
                            extra_conf="Sub2apiSlotWait 1")
        a.start()
        started.append(a)
        b = harness.Gateway(root / "b", "pgsql", mock_upstreams, peer=a,
                            extra_conf="Sub2apiSlotWait 1")
        b.start()
        started.append(b)
    except harness.HarnessError as exc:
        for gw in reversed(started):
            gw.stop()
        pytest.fail(str(exc), pytrace=False)
    offsets = [gw.log_offset() for gw in started]
    yield a, b
    bad = []
    for gw, offset in zip(reversed(started), reversed(offsets)):
        gw.stop()
        bad += gw.bad_log_lines(offset)
    if request.session.testsfailed or bad:
        print("kept for inspection:", root)
    else:
        shutil.rmtree(root, ignore_errors=True)
    assert not bad, "unexpected error-log lines:\n" + "\n".join(bad)


@pytest.fixture
def two(nodes):
    for gw in nodes:
        gw.begin_test()
    yield nodes
    bad = sum((gw.end_test() for gw in nodes), [])
    assert not bad, "unexpected error-log lines:\n" + "\n".join(bad)


def sent_keys(gw):
    return [r["headers"].get("x-api-key") for r in gw.mock_requests()]


def test_both_nodes_serve_one_database(two):
    a, b = two
    t = a.new_tenant()
    assert a.post_messages(messages_body(), key=t.api_key)[0] == 200
    assert b.post_messages(messages_body(), key=t.api_key)[0] == 200
    assert len(a.wait_usage({"key_id": t.key["id"]}, count=2)) == 2


def test_conversation_stays_on_its_account_across_nodes(two):
    a, b = two
    t = a.new_tenant(accounts=4)
    for session in ("conv-1", "conv-2"):
        a.mock_clear()
        for i in range(6):
            gw = (a, b)[i % 2]
            status, _, raw = gw.post_messages(messages_body("turn %d" % i), key=t.api_key,
                                              headers={"x-claude-code-session-id": session})
            assert status == 200, raw
        keys = sent_keys(a)
        assert len(keys) == 6 and len(set(keys)) == 1, keys


def test_account_concurrency_is_shared(two):
    a, b = two
    t = a.new_tenant(accounts=1, concurrency=1)
    slow = a.hold_account(t, 2500, watcher=b)
    # node b sees node a's request in flight, and has no place for another
    state = b.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])["state"]
    assert state["in_flight"] == 1
    status, headers, raw = b.post_messages(messages_body(), key=t.api_key)
    assert status == 429, raw
    assert "concurrency" in json.loads(raw)["error"]["message"]
    assert slow.result()[0] == 200
    assert b.post_messages(messages_body(), key=t.api_key)[0] == 200
    assert b.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])["state"]["in_flight"] == 0


def test_key_and_user_limits_are_shared(two):
    a, b = two
    t = a.new_tenant(accounts=3)
    a.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"concurrency": 1, "rpm_limit": 4})
    time.sleep(0.3)  # node b's cache learns of the change
    harness.within_one_minute(15)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(a.post_messages, messages_body(mock={"delay_ms": 2000}),
                           key=t.api_key)
        time.sleep(0.5)
        status, _, raw = b.post_messages(messages_body(), key=t.api_key)
        assert status == 429 and "API key" in json.loads(raw)["error"]["message"], raw
        assert slow.result()[0] == 200
    # two requests counted so far this minute (one on each node); two more pass
    assert a.post_messages(messages_body(), key=t.api_key)[0] == 200
    assert b.post_messages(messages_body(), key=t.api_key)[0] == 200
    status, _, raw = a.post_messages(messages_body(), key=t.api_key)
    assert status == 429 and "per minute" in json.loads(raw)["error"]["message"], raw


def test_cooldown_seen_by_the_other_node(two):
    a, b = two
    a.expect_error(r"S2A0207")
    t = a.new_tenant(accounts=0)
    first = a.create_account([t.group["id"]], priority=10)
    second = a.create_account([t.group["id"]], priority=20)
    first_cred, second_cred = a.credentials[first["id"]], a.credentials[second["id"]]
    body = messages_body(mock={"status_for": {first_cred: 429},
                               "headers": {"retry-after": "600"}})
    assert a.post_messages(body, key=t.api_key)[0] == 200
    assert sent_keys(a) == [first_cred, second_cred]
    a.mock_clear()
    # node b never sends to the resting account, though it has the better priority
    for i in range(4):
        status, _, _ = b.post_messages(messages_body("q%d" % i), key=t.api_key,
                                       headers={"x-claude-code-session-id": b.unique("s")})
        assert status == 200
    assert sent_keys(a) == [second_cred] * 4
    state = b.admin_ok("GET", "/admin/accounts/%d" % first["id"])["state"]
    assert state["rate_limited_until"] > time.time() + 500
    # clearing it on node b puts it back for node a
    b.admin_ok("PATCH", "/admin/accounts/%d" % first["id"], {"clear_cooldown": True})
    a.mock_clear()
    assert a.post_messages(messages_body("back"), key=t.api_key,
                           headers={"x-claude-code-session-id": a.unique("s")})[0] == 200
    assert sent_keys(a) == [first_cred]


def test_admin_change_on_one_node_reaches_the_other(two):
    a, b = two
    t = a.new_tenant()
    assert b.post_messages(messages_body(), key=t.api_key)[0] == 200  # b caches the key
    a.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"status": "disabled"})
    deadline = time.monotonic() + 1.0
    while True:
        status, _, raw = b.post_messages(messages_body(), key=t.api_key)
        if status == 401 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == 401 and "disabled" in json.loads(raw)["error"]["message"]


def test_token_refreshed_once_for_both_nodes(two):
    """Twenty requests on each node find an OAuth token about to end: one
    refresh call reaches the token endpoint, and both nodes send the new
    token upstream."""
    a, b = two
    t = a.new_tenant(accounts=0)
    old = "sk-ant-oat01-old-" + harness.Gateway.unique("n")
    a.create_account([t.group["id"]], type="oauth", credential=old,
                     refresh_token="sk-ant-ort01-" + harness.Gateway.unique("r"),
                     expires_at=int(time.time()) + 60, concurrency=100)
    b.admin_ok("GET", "/admin/accounts")  # b knows the account too
    a.mock_clear()

    def ask(gw):
        return gw.post_messages(messages_body(), key=t.api_key)[0]

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        statuses = list(pool.map(ask, [a, b] * 20))
    assert statuses == [200] * 40
    assert len(a.mock.token_calls()) == 1
    sent = [r["headers"].get("authorization", "")[7:] for r in a.mock_requests()]
    new = [s for s in sent if s != old]
    # what went after the refresh carries the one new token, from both nodes
    assert new and len(set(new)) == 1 and new[0].startswith("sk-ant-oat01-mock-")
    # the next request of each node uses it, once node b's cache learned of
    # the refresh (within S2A_REDIS_GENERATION_MSEC; the old token is still
    # good meanwhile)
    time.sleep(0.3)
    a.mock_clear()
    assert ask(a) == 200 and ask(b) == 200
    assert {r["headers"]["authorization"][7:] for r in a.mock_requests()} == {new[0]}
