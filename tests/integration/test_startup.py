"""Children starting at once on a fresh database: one brings the schema up
to date, the others find it done, and nothing goes to the error log."""
import shutil
import time

import harness

CHILDREN = 8


# SQLite is where a connection's statements meet a schema changed under them
def test_children_start_on_a_fresh_database_in_turn(mock_upstreams):
    children = CHILDREN
    root = harness.new_root("s2a-startup-")
    gw = harness.Gateway(root, "sqlite", mock_upstreams,
                         extra_conf="ServerLimit %d\nStartServers %d\nMaxRequestWorkers %d\n"
                         "MinSpareThreads %d\n" % (children, children, 25 * children,
                                                   25 * children))
    # every thread is a spare one: httpd says so
    gw.expect_error(r"AH10159")
    gw.start()
    try:
        deadline = time.monotonic() + 20
        while len(gw.child_pids()) < children and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(gw.child_pids()) == children
        tenant = gw.new_tenant()
        status, _, raw = gw.post_messages(harness.messages_body(), key=tenant.api_key)
        assert status == 200, raw
    finally:
        gw.stop()
        bad = gw.bad_log_lines(0)
        shutil.rmtree(root, ignore_errors=True)
    assert bad == []
