"""Fixtures: the whole suite runs once per configuration against a real httpd
with the module and two mock upstreams: `sqlite` (SQLite, shm store),
`pgsql` (a private PostgreSQL cluster, shm store) and `redis` (PostgreSQL and
a private redis-server as the store, as several nodes would run).

Run: /usr/bin/python3 -m pytest tests/integration   (-k sqlite, -k pgsql or -k redis for one)
Environment: S2A_MODULE (module path), S2A_KEEP=1 keeps the run's
directories (they are also kept when a test failed).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


_kept = []


def _cleanup(request, path):
    if os.environ.get("S2A_KEEP") or request.session.testsfailed:
        _kept.append(str(path))
    else:
        shutil.rmtree(path, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    if _kept:
        terminalreporter.write_line("kept for inspection: " + " ".join(_kept))


@pytest.fixture(scope="session")
def mock_upstreams(request):
    root = harness.new_root("s2a-mock-")
    mocks = []
    try:
        for i in range(2):
            mocks.append(harness.MockUpstream(root / ("mock%d.log" % (i + 1))).start())
        yield mocks
    finally:
        for m in mocks:
            m.stop()
        _cleanup(request, root)


CONFIGS = {"sqlite": ("sqlite", "shm"), "pgsql": ("pgsql", "shm"), "redis": ("pgsql", "redis")}


def serve_gateway(request, mocks, name, configure=None):
    """Starts a gateway of the configuration request.param, yields it, stops
    it and fails on unexpected error-log lines. configure(gw, root) may set
    it up before it starts."""
    db, store = CONFIGS[request.param]
    if db == "pgsql" and not harness.Postgres.available():
        pytest.fail("PostgreSQL server binaries not found in %s" % harness.PG_BIN,
                    pytrace=False)
    if store == "redis" and not harness.Redis.available():
        pytest.fail("redis-server not found", pytrace=False)
    if not harness.module_path().exists():
        pytest.fail("module %s not found: build it with make or set S2A_MODULE"
                    % harness.module_path(), pytrace=False)
    root = harness.new_root("s2a-%s%s-" % (name, request.param))
    gw = harness.Gateway(root, db, mocks, store=store)
    if configure:
        configure(gw, root)
    try:
        gw.start()
    except harness.HarnessError as exc:
        _cleanup(request, root)
        pytest.fail(str(exc), pytrace=False)
    offset = gw.log_offset()
    try:
        yield gw
    finally:
        offset = gw.test_offset or offset
        gw.stop()
        bad = gw.bad_log_lines(offset)
        _cleanup(request, root)
        if bad:
            pytest.fail("error log of the %s gateway has unexpected lines:\n%s"
                        % (request.param, "\n".join(bad)), pytrace=False)


@pytest.fixture(scope="session", params=list(CONFIGS))
def gateway(request, mock_upstreams):
    yield from serve_gateway(request, mock_upstreams, "")


@pytest.fixture(autouse=True)
def _gateway_guard(request):
    """Fresh mock recordings per test; fail on unexpected error-log lines."""
    if "gateway" not in request.fixturenames:
        yield
        return
    gw = request.getfixturevalue("gateway")
    gw.begin_test()
    yield
    bad = gw.end_test()
    if bad:
        pytest.fail("unexpected error-log lines:\n" + "\n".join(bad), pytrace=False)


@pytest.fixture
def tenant(gateway):
    """User, group, key and one account of its own for the test."""
    return gateway.new_tenant()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    gw = item.funcargs.get("gateway") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and isinstance(gw, harness.Gateway):
        try:
            text = gw.error_log(gw.test_offset)
        except OSError:
            return
        report.sections.append(("httpd error_log during the test", text[-20000:]))


@pytest.fixture
def ctl(gateway):
    """sub2apictl against the gateway, as an operator runs it.
    run(*args, env=None, input=None, code=0) -> CompletedProcess; checks the exit code."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SUB2API_")}
    base_env.update(SUB2API_URL=gateway.base_url + "/admin",
                    SUB2API_ADMIN_TOKEN=gateway.admin_token)

    def run(*args, env=None, input=None, code=0):
        full_env = dict(base_env)
        for k, v in (env or {}).items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = v
        res = subprocess.run([sys.executable, str(harness.REPO / "sub2apictl")]
                             + [str(a) for a in args],
                             capture_output=True, text=True, env=full_env, input=input,
                             timeout=60)
        assert res.returncode == code, "sub2apictl %s -> %d (wanted %d)\nstdout: %s\nstderr: %s" % (
            " ".join(map(str, args)), res.returncode, code, res.stdout, res.stderr)
        assert gateway.admin_token not in res.stdout + res.stderr
        return res

    def run_json(*args, **kw):
        return json.loads(run(*(args + ("--json",)), **kw).stdout)

    run.json = run_json
    return run
