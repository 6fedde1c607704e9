"""The admin page (SetHandler sub2api-dashboard): its response, and the page
itself in headless Chromium (tests/sdk/dashboard.mjs) against the admin API."""

import collections
import json
import os
import re
import secrets
import shutil
import subprocess
import time

import pytest

import harness

SDK_DIR = harness.SDK_DIR
ARTIFACTS = harness.REPO / "build" / "artifacts"
CHROMIUM = os.environ.get("S2A_CHROMIUM", "/usr/bin/chromium")
SONNET, HAIKU = "claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"


def page(gateway, path="/dashboard", method="GET"):
    return harness.http_request(gateway.port, method, path)


def test_page_headers_and_methods(gateway):
    status, headers, body = page(gateway)
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/]+=*';", csp)
    assert re.search(r"style-src 'sha256-[A-Za-z0-9+/]+=*';", csp)
    assert int(headers["content-length"]) == len(body)
    text = body.decode()
    assert '<meta name="s2a-admin-base" content="/admin/">' in text
    assert "<script>" in text and "<style>" in text and "src=" not in text.split("<body>")[1]
    assert gateway.admin_token not in text

    status, head_headers, head_body = page(gateway, method="HEAD")
    assert status == 200 and head_body == b""
    assert head_headers["content-length"] == headers["content-length"]
    for method in ("POST", "PUT", "DELETE"):
        status, headers, _ = page(gateway, method=method)
        assert status == 405, method
        assert "GET" in headers["allow"]

    # the operator's admin location, as SetEnv gives it; only a path of
    # this server (the page's CSP allows no other)
    status, _, body = page(gateway, "/ops/dashboard")
    assert status == 200
    assert '<meta name="s2a-admin-base" content="/ops/admin/">' in body.decode()
    offset = gateway.log_offset()
    status, _, body = page(gateway, "/elsewhere/dashboard")
    assert status == 200
    assert '<meta name="s2a-admin-base" content="/admin/">' in body.decode()
    assert re.search(r"\[sub2api:warn\].*S2A0701: SUB2API_ADMIN_BASE must be a path",
                     gateway.error_log(offset))


def test_usage_summary_split(gateway):
    """by=day&split=model|account: the sums per day and model or account the
    page's chart draws."""
    t = gateway.new_tenant(accounts=2)
    for i, model in enumerate([SONNET, HAIKU, SONNET]):
        body = harness.messages_body("q%d" % i, model=model,
                                     mock={"usage": {"input_tokens": 100 * (i + 1),
                                                     "output_tokens": 10}})
        status, _, raw = gateway.post_messages(body, key=t.api_key)
        assert status == 200, raw
    rows = gateway.wait_usage({"key_id": t.key["id"]}, count=3)
    kid = t.key["id"]
    for split, field, col in (("model", "model", "model"), ("account", "account",
                                                            "account_id")):
        out = gateway.admin_ok("GET", "/admin/usage/summary?by=day&split=%s&key_id=%d"
                               % (split, kid))
        assert out["by"] == "day" and out["split"] == split
        want = collections.defaultdict(lambda: [0, 0, 0])
        for r in rows:
            w = want[(r["created_at"] - r["created_at"] % 86400, r[col])]
            w[0] += 1
            w[1] += r["input_tokens"]
            w[2] += r["actual_cost_nanousd"]
        got = {(e["day"], e[field]): [e["requests"], e["input_tokens"],
                                      e["actual_cost_nanousd"]] for e in out["data"]}
        assert got == dict(want)
        assert [(e["day"], e[field]) for e in out["data"]] == sorted(got)
        for e in out["data"]:
            assert e["date"] == time.strftime("%Y-%m-%d", time.gmtime(e["day"]))
    # the other way round: per model, then per day
    out = gateway.admin_ok("GET", "/admin/usage/summary?by=model&split=day&key_id=%d" % kid)
    assert [(e["model"], e["requests"]) for e in out["data"]] == [(HAIKU, 1), (SONNET, 2)]
    assert all("date" in e for e in out["data"])
    without = gateway.admin_ok("GET", "/admin/usage/summary?by=day&key_id=%d" % kid)
    assert "split" not in without and "model" not in without["data"][0]
    for query in ("by=day&split=day", "by=day&split=week", "by=day&split="):
        status, body = gateway.admin("GET", "/admin/usage/summary?" + query)
        assert status == 400, (query, body)
        assert body["error"]["message"].startswith("split:")


@pytest.fixture(scope="session")
def browser():
    """Runs dashboard.mjs with Debian's chromium; playwright-core from tests/sdk."""
    node = shutil.which("node")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("chromium is not installed (%s)" % CHROMIUM)
    if not node:
        pytest.skip("node is not installed")
    missing = harness.sdk_packages("playwright-core")
    assert not missing, missing

    def run(plan):
        plan = dict(plan, chromium=CHROMIUM)
        res = subprocess.run([node, str(SDK_DIR / "dashboard.mjs"), json.dumps(plan)],
                             capture_output=True, text=True, timeout=240,
                             stdin=subprocess.DEVNULL)
        lines = res.stdout.strip().splitlines()
        assert lines, "dashboard.mjs printed nothing (exit %d): %s" % (res.returncode,
                                                                       res.stderr[-4000:])
        return json.loads(lines[-1])

    return run


def test_dashboard_in_chromium(gateway, browser, request):
    # usage to draw: requests through the gateway, billed big enough that
    # this test's series are the largest of the day
    t = gateway.new_tenant(balance_usd="100000", accounts=2)
    sent = [SONNET, SONNET, HAIKU, SONNET, HAIKU]
    for i, model in enumerate(sent):
        body = harness.messages_body("chart %d" % i, model=model,
                                     mock={"usage": {"input_tokens": 5000000,
                                                     "output_tokens": 1000}})
        status, _, raw = gateway.post_messages(body, key=t.api_key)
        assert status == 200, raw
    rows = gateway.wait_usage({"key_id": t.key["id"]}, count=len(sent))
    states = accounts_in_every_state(gateway)
    day = time.strftime("%Y-%m-%d", time.gmtime(rows[0]["created_at"]))
    assert all(time.strftime("%Y-%m-%d", time.gmtime(r["created_at"])) == day for r in rows)
    per_account = collections.defaultdict(lambda: [0, 0])
    per_model = collections.defaultdict(lambda: [0, 0])
    for r in rows:
        for sums in (per_account[str(r["account_id"])], per_model[r["model"]]):
            sums[0] += 1
            sums[1] += r["actual_cost_nanousd"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    if shot.exists():
        shot.unlink()
    key_name = gateway.unique("dashboard-key")
    account_name = gateway.unique("dashboard-account")
    credential = "sk-ant-api03-" + secrets.token_hex(24) + "-DB"
    cloud_name = gateway.unique("dashboard-bedrock")
    akid, aws_secret = harness.aws_test_key(cloud_name)
    before = gateway.admin_ok("GET", "/admin/users/%d" % t.user["id"])
    out = browser({
        "url": gateway.base_url + "/dashboard",
        "opsUrl": gateway.base_url + "/ops/dashboard",
        "token": gateway.admin_token,
        "screenshot": str(shot),
        "key": {"user_id": t.user["id"], "group_id": t.group["id"], "name": key_name,
                "budget": "2.5", "models": "claude-sonnet-*, claude-3-5-haiku-20241022"},
        "balance": {"user_id": t.user["id"], "amount": "2.5", "reason": "dashboard test"},
        "account": {"name": account_name, "credential": credential,
                    "endpoint": gateway.mock.url, "group_id": t.group["id"]},
        "cloudAccount": {"name": cloud_name, "type": "bedrock", "region": "us-east-1",
                         "credential": json.dumps({"access_key_id": akid,
                                                   "secret_access_key": aws_secret}, indent=2),
                         "endpoint": gateway.mock.url, "group_id": t.group["id"]},
    })
    assert out["ok"], out.get("error")

    # no script errors, no CSP violation; the wrong token's 401 is the only
    # resource error (Chromium reports failed loads in the console)
    assert out["pageErrors"] == [] and out["csp"] == [], out
    for m in out["console"]:
        assert m["phase"] == "wrong-token" and "status of 401" in m["text"], m
    assert out["status"] == 200 and "sha256-" in out["headers"]["content-security-policy"]
    assert out["baseField"] == "/admin/"

    # a wrong token: a clear error, nothing kept
    assert "not accepted" in out["wrongToken"]["error"] and "401" in out["wrongToken"]["error"]
    assert out["wrongToken"]["appHidden"]
    assert json.loads(out["wrongToken"]["storage"])["session"].get("s2a.token") is None
    assert out["loginErrorHidden"] and out["apiLabel"] == "/admin/"

    # accounts and users as the admin API has them
    listed = {a["id"]: a for a in out["accounts"]}
    for acct in t.accounts:
        row = listed[acct["id"]]
        assert row["cells"][1] == acct["name"] and row["state"] == "ok"
        assert row["cells"][3] == "active"
        assert row["cells"][6] == "0 / %d" % acct["concurrency"]
    for acct_id, (cls, text) in states.items():
        assert listed[acct_id]["state"] == cls and text in listed[acct_id]["cells"][3], \
            (listed[acct_id], cls, text)
    assert "429 rest" in listed[states.cooling]["cells"][4]
    assert "Unauthorized" in listed[states.error]["cells"][3] or \
        listed[states.error]["cells"][3].startswith("error")
    assert listed[states.serving]["cells"][5].startswith("near limit")
    users = {u["id"]: u for u in out["users"]}
    assert users[t.user["id"]]["cells"][1] == t.user["name"]
    assert users[t.user["id"]]["cells"][3] == format_usd(before["balance_nanousd"])

    # the chart: one bar per (day, series) with the sums of the usage rows
    charts = out["charts"]
    for name, chart in charts.items():
        assert chart["bars"], name
        # laid out as drawn (no stylesheet rule overrides the geometry), and
        # the highest day's stack reaching most of the plot's 240 pixels
        for b in chart["bars"]:
            assert abs(b["height"] - b["drawn"]) < 1.5, (name, b)
        stacks = collections.Counter()
        for b in chart["bars"]:
            stacks[b["day"]] += b["height"]
        assert max(stacks.values()) > 120, (name, stacks)
        assert len(chart["titles"]) == 2 and "Day (UTC)" in chart["titles"], chart["titles"]
        assert any(tick for tick in chart["ticks"]), name
    for account_id, (count, cost) in per_account.items():
        for chart, want in (("accountRequests", count), ("accountCost", cost)):
            got = [b["value"] for b in charts[chart]["bars"]
                   if b["day"] == day and b["series"] == account_id]
            assert got == [want], (chart, account_id, charts[chart])
        assert account_id in charts["accountCost"]["legend"]
    # models are shared with other tests: at least this test's requests
    for model, (count, cost) in per_model.items():
        for chart, want in (("modelRequests", count), ("modelCost", cost)):
            got = [b["value"] for b in charts[chart]["bars"]
                   if b["day"] == day and b["series"] == model]
            assert len(got) == 1 and got[0] >= want, (chart, model, charts[chart])

    # a new key: its secret shown once, in the page only
    secret = out["key"]["secret"]
    assert re.fullmatch(r"sk-s2a-[0-9a-f]{48}", secret), secret
    assert key_name in out["key"]["owner"] and t.user["name"] in out["key"]["owner"]
    assert "created" in out["key"]["message"]["text"] and "ok" in out["key"]["message"]["cls"]
    assert secret not in out["key"]["storage"]
    assert out["key"]["hiddenAfterDone"] and out["key"]["valueAfterDone"] == ""
    keys = [k for k in gateway.admin_ok("GET", "/admin/keys")["data"] if k["name"] == key_name]
    assert len(keys) == 1 and keys[0]["user_id"] == t.user["id"]
    assert keys[0]["group_id"] == t.group["id"] and secret.startswith(keys[0]["prefix"][:-3])
    # its budget and models as typed; the table shows them and what it spent
    assert keys[0]["budget_nanousd"] == 2_500_000_000
    assert keys[0]["models"] == ["claude-sonnet-*", "claude-3-5-haiku-20241022"]
    assert "claude-sonnet-*" in out["key"]["row"][6]
    assert out["key"]["row"][7] == "$0.00 of $2.50", out["key"]["row"]
    assert secret not in json.dumps(gateway.admin_ok("GET", "/admin/keys"))
    status, _, _ = gateway.post_messages(harness.messages_body("with the new key"), key=secret)
    assert status == 200
    assert secret not in out["afterReload"]["html"] and out["afterReload"]["secretHidden"]
    assert out["afterReload"]["secretValue"] == ""

    # the balance form adds to the balance, with its reason in the log
    assert "is now" in out["balance"]["message"]["text"], out["balance"]
    log = gateway.admin_ok("GET", "/admin/balance_log?user_id=%d" % t.user["id"])["data"]
    assert log[0]["delta_nanousd"] == 2500000000 and log[0]["reason"] == "dashboard test"
    assert log[0]["actor"] == "dashboard"

    # the account form: the account exists, its credential is kept nowhere in the page
    assert "added" in out["account"]["message"]["text"], out["account"]
    assert out["account"]["credentialField"] == ""
    accts = [a for a in gateway.admin_ok("GET", "/admin/accounts")["data"]
             if a["name"] == account_name]
    assert len(accts) == 1 and accts[0]["group_ids"] == [t.group["id"]]
    assert accts[0]["endpoint"] == gateway.mock.url and accts[0]["credential"].endswith("-DB")
    assert credential not in out["afterReload"]["html"]
    gateway.admin_ok("PATCH", "/admin/accounts/%d" % accts[0]["id"], {"status": "disabled"})
    # a Bedrock key pair pasted as JSON: a Bedrock account, its secret nowhere in the page
    assert "added" in out["cloudAccount"]["message"]["text"], out["cloudAccount"]
    [cloud] = [a for a in gateway.admin_ok("GET", "/admin/accounts")["data"]
               if a["name"] == cloud_name]
    assert cloud["type"] == "bedrock" and cloud["region"] == "us-east-1"
    assert cloud["credential"].startswith("access key AKIA")
    assert aws_secret not in out["afterReload"]["html"]
    gateway.admin_ok("PATCH", "/admin/accounts/%d" % cloud["id"], {"status": "disabled"})

    # signing out forgets the token; the operator's admin path is used
    assert json.loads(out["afterLogout"]["storage"]) == {"session": {}, "local": {}}
    assert out["ops"] == {"baseField": "/ops/admin/", "apiLabel": "/ops/admin/"}

    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class States(dict):
    """account id -> (row class, state text), and the ids by name."""


def accounts_in_every_state(gateway):
    """Accounts of a group of their own: one resting after a 429, one in
    error after a 401, one serving (near its 5-hour limit), one paused, one
    disabled."""
    user = gateway.create_user(balance_usd="10")
    group = gateway.create_group()
    key = gateway.create_key(user["id"], group["id"])
    cooling, error, serving, paused = (gateway.create_account([group["id"]], priority=p)
                                       for p in (1, 2, 3, 4))
    disabled = gateway.create_account([group["id"]], status="disabled")
    gateway.admin_ok("PATCH", "/admin/accounts/%d" % paused["id"], {"schedulable": False})
    gateway.expect_error(r"S2A0207|S2A0205")
    reset = int(time.time()) + 3 * 3600
    status, _, raw = gateway.post_messages(harness.messages_body(mock={
        "status_for": {gateway.credentials[cooling["id"]]: 429,
                       gateway.credentials[error["id"]]: 401},
        "headers": {"anthropic-ratelimit-unified-5h-status": "allowed_warning",
                    "anthropic-ratelimit-unified-5h-reset": str(reset)}}), key=key["key"])
    assert status == 200, raw
    out = States({cooling["id"]: ("warn", "rate_limited until"), error["id"]: ("bad", "error"),
                  serving["id"]: ("ok", "active"), paused["id"]: ("off", "unschedulable"),
                  disabled["id"]: ("off", "disabled")})
    out.cooling, out.error, out.serving = cooling["id"], error["id"], serving["id"]
    return out


def format_usd(nano):
    """The page's balance text: exact, at least two decimals, thousands grouped."""
    whole, frac = divmod(abs(nano), 10 ** 9)
    frac = ("%09d" % frac).rstrip("0").ljust(2, "0")
    return ("-$" if nano < 0 else "$") + "{:,}".format(whole) + "." + frac
