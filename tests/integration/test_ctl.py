"""sub2apictl, run as a subprocess the way an operator runs it, against the gateway."""

import calendar
import decimal
import json
import os
import re
import secrets
import subprocess
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

import harness

CTL = harness.REPO / "sub2apictl"


def credential():
    return "sk-ant-api03-" + secrets.token_hex(24) + "-AA"


def write_secret(tmp_path, name, secret):
    path = tmp_path / name
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return path


def test_script_is_executable_with_python3_shebang():
    assert os.access(CTL, os.X_OK)
    with open(CTL) as f:
        assert f.readline().strip() == "#!/usr/bin/env python3"
    res = subprocess.run([str(CTL), "--help"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and "account" in res.stdout and "usage" in res.stdout


def test_tenant_setup_request_usage_and_key_disable(gateway, ctl, tmp_path):
    uname, gname = gateway.unique("ctl-user"), gateway.unique("ctl-group")
    user = ctl.json("user", "add", "--name", uname, "--balance", "10")
    assert user["name"] == uname and user["balance_nanousd"] == 10 * 10**9
    group = ctl.json("group", "add", "--name", gname, "--rate-multiplier", "1.5")
    assert group["rate_multiplier"] == "1.5"

    # The plain key is printed once, on a line of its own.
    res = ctl("key", "add", "--user", user["id"], "--group", group["id"], "--name", "laptop")
    plain = [line.strip() for line in res.stdout.splitlines()
             if line.strip().startswith("sk-s2a-")]
    assert len(plain) == 1 and len(plain[0]) == len("sk-s2a-") + 48, res.stdout
    assert "only" in res.stdout.lower()
    api_key = plain[0]
    key = [k for k in ctl.json("key", "list")["data"] if k["name"] == "laptop"
           and k["user_id"] == user["id"]][0]
    assert "key" not in key and api_key not in ctl("key", "list").stdout

    secret = credential()
    cred_file = write_secret(tmp_path, "cred", secret)
    account = ctl.json("account", "add", "--name", gateway.unique("ctl-acct"),
                       "--credential-file", cred_file, "--endpoint", gateway.mock.url,
                       "--group", group["id"], "--priority", "5", "--concurrency", "2")
    assert account["credential"] != secret and secret[-4:] in account["credential"]
    assert account["group_ids"] == [group["id"]] and account["priority"] == 5
    assert account["endpoint"] == gateway.mock.url

    users = ctl("user", "list").stdout
    assert any(uname in line and "10" in line for line in users.splitlines()), users
    groups = ctl("group", "list").stdout
    assert any(gname in line and "1.5" in line for line in groups.splitlines()), groups
    keys = ctl("key", "list", "--user", user["id"]).stdout
    assert any(key["prefix"] in line and "active" in line for line in keys.splitlines()), keys
    accounts = ctl("account", "list").stdout
    line = [l for l in accounts.splitlines() if account["name"] in l]
    assert line and gateway.mock.url in line[0] and "active" in line[0], accounts
    shown = ctl("account", "show", account["id"]).stdout
    assert account["credential"] in shown
    assert secret not in accounts + shown

    status, _, raw = gateway.post_messages(harness.messages_body(), key=api_key)
    assert status == 200, raw
    assert gateway.mock_requests()[0]["headers"].get("x-api-key") == secret
    gateway.wait_usage({"key_id": key["id"]})
    rows = ctl.json("usage", "--key", key["id"])["data"]
    assert len(rows) == 1
    row = rows[0]
    assert row["account_id"] == account["id"] and row["user_id"] == user["id"]
    assert row["input_tokens"] == 10 and row["output_tokens"] == 5
    assert row["actual_cost_nanousd"] > 0
    table = ctl("usage", "--user", user["id"], "--limit", "5").stdout
    assert harness.DEFAULT_MODEL in table and "1 row," in table
    after = ctl.json("user", "show", user["id"])
    assert after["balance_nanousd"] == 10 * 10**9 - row["actual_cost_nanousd"]

    disabled = ctl.json("key", "disable", key["id"])
    assert disabled["status"] == "disabled"
    status, _, raw = gateway.post_messages(harness.messages_body(), key=api_key)
    assert status == 401, raw
    assert json.loads(raw)["error"]["type"] == "authentication_error"

    assert ctl.json("key", "enable", key["id"])["status"] == "active"
    status, _, raw = gateway.post_messages(harness.messages_body(), key=api_key)
    assert status == 200, raw


def test_wrong_or_missing_token_and_wrong_url(gateway, ctl, tmp_path):
    wrong = "s2a-admin-" + secrets.token_hex(16)
    res = ctl("user", "list", env={"SUB2API_ADMIN_TOKEN": wrong}, code=1)
    assert res.stdout == ""
    assert "A valid admin token is required" in res.stderr
    assert "401" in res.stderr and wrong not in res.stderr

    res = ctl("user", "list", env={"SUB2API_ADMIN_TOKEN": None}, code=2)
    assert "token" in res.stderr

    token_file = write_secret(tmp_path, "token", gateway.admin_token)
    ctl("user", "list", "--token-file", token_file, env={"SUB2API_ADMIN_TOKEN": None})
    ctl("user", "list", env={"SUB2API_ADMIN_TOKEN": None,
                             "SUB2API_ADMIN_TOKEN_FILE": str(token_file)})
    # A flag wins over the environment.
    ctl("user", "list", "--token-file", token_file, env={"SUB2API_ADMIN_TOKEN": wrong})

    res = ctl("user", "list", "--url", gateway.base_url + "/not-admin", code=1)
    assert "check --url" in res.stderr


def test_user_and_group_changes(gateway, ctl):
    user = ctl.json("user", "add", "--name", gateway.unique("ctl-user"), "--balance", "1")
    uid = user["id"]
    assert ctl.json("user", "set", uid, "--balance", "12.5")["balance_usd"] == "12.5"
    changed = ctl.json("user", "set", uid, "--add-balance", "-0.25", "--status", "disabled")
    assert changed["balance_nanousd"] == 12250000000 and changed["status"] == "disabled"
    assert "12.25" in ctl("user", "show", uid).stdout

    res = ctl("user", "set", uid, code=1)
    assert "nothing to change" in res.stderr
    res = ctl("user", "show", "999999999", code=1)
    assert "No such user" in res.stderr and "404" in res.stderr
    # a malformed amount is refused before anything is sent
    res = ctl("user", "set", uid, "--name", "renamed", "--balance", "a lot", code=2)
    assert "--balance" in res.stderr and "decimal" in res.stderr
    assert gateway.admin_ok("GET", "/admin/users/%d" % uid)["name"] == user["name"]

    group = ctl.json("group", "add", "--name", gateway.unique("ctl-group"))
    assert group["rate_multiplier"] == "1"
    new_name = gateway.unique("ctl-group")
    group = ctl.json("group", "set", group["id"], "--rate-multiplier", "0.8", "--name", new_name)
    assert group["rate_multiplier"] == "0.8" and group["name"] == new_name
    res = ctl("group", "set", group["id"], "--rate-multiplier", "0", code=1)
    assert "rate_multiplier" in res.stderr


def test_account_credential_sources_and_changes(gateway, ctl, tmp_path):
    t = gateway.new_tenant(accounts=0)
    other = gateway.create_group()
    secret = credential()
    account = ctl.json("account", "add", "--name", gateway.unique("ctl-acct"),
                       "--credential-env", "S2A_TEST_CRED", "--endpoint", gateway.mock.url,
                       "--group", "%d,%d" % (t.group["id"], other["id"]),
                       "--map", "claude-alias=%s" % harness.DEFAULT_MODEL,
                       env={"S2A_TEST_CRED": secret})
    assert sorted(account["group_ids"]) == sorted([t.group["id"], other["id"]])
    assert account["model_mapping"] == {"claude-alias": harness.DEFAULT_MODEL}
    assert account["type"] == "apikey" and secret not in json.dumps(account)

    status, _, raw = gateway.post_messages(harness.messages_body(model="claude-alias"),
                                           key=t.api_key)
    assert status == 200, raw
    sent = gateway.mock_requests()[0]
    assert sent["headers"].get("x-api-key") == secret
    assert json.loads(sent["body"])["model"] == harness.DEFAULT_MODEL

    # Rotation through stdin; the mapping and the groups are replaced.
    rotated = credential()
    changed = ctl.json("account", "set", account["id"], "--credential-file", "-", "--clear-map",
                       "--group", t.group["id"], input=rotated + "\n")
    assert changed["group_ids"] == [t.group["id"]] and changed["model_mapping"] == {}
    gateway.mock_clear()
    status, _, raw = gateway.post_messages(harness.messages_body(), key=t.api_key)
    assert status == 200, raw
    assert gateway.mock_requests()[0]["headers"].get("x-api-key") == rotated

    res = ctl("account", "set", account["id"], "--credential-file", tmp_path / "missing",
              code=1)
    assert "credential file" in res.stderr
    res = ctl("account", "set", account["id"], "--credential-env", "S2A_TEST_UNSET",
              env={"S2A_TEST_UNSET": None}, code=1)
    assert "S2A_TEST_UNSET" in res.stderr
    res = ctl("account", "add", "--name", "x", "--endpoint", gateway.mock.url, code=1)
    assert "credential" in res.stderr
    res = ctl("account", "set", account["id"], "--map", "no-equals-sign", code=1)
    assert "--map" in res.stderr


def test_oauth_account_with_refresh_token(gateway, ctl):
    t = gateway.new_tenant(accounts=0)
    refresh = "sk-ant-ort01-" + secrets.token_hex(12)
    ends = int(time.time()) + 7200
    account = ctl.json("account", "add", "--name", gateway.unique("ctl-oauth"), "--type", "oauth",
                       "--credential-env", "S2A_TEST_CRED", "--refresh-token-env",
                       "S2A_TEST_REFRESH", "--expires-at", str(ends), "--endpoint",
                       gateway.mock.url, "--group", t.group["id"],
                       env={"S2A_TEST_CRED": "sk-ant-oat01-" + secrets.token_hex(12),
                            "S2A_TEST_REFRESH": refresh})
    assert account["refresh_token_set"] is True and account["expires_at"] == ends
    assert refresh not in json.dumps(account)
    shown = ctl("account", "show", account["id"]).stdout
    assert "refresh token" in shown and "set" in shown and refresh not in shown
    res = ctl("account", "set", account["id"], "--refresh-token-env", "S2A_TEST_UNSET",
              env={"S2A_TEST_UNSET": None}, code=1)
    assert "S2A_TEST_UNSET" in res.stderr
    changed = ctl.json("account", "set", account["id"], "--header", "x-team=blue",
                       "--header", "anthropic-beta=a,b")
    # Names are shown, values may be secrets: masked like the credential.
    assert changed["headers"] == {"x-team": "****", "anthropic-beta": "****"}
    shown = ctl("account", "show", account["id"]).stdout
    assert "x-team: ****" in shown and "blue" not in shown
    assert ctl.json("account", "set", account["id"], "--clear-headers")["headers"] == {}
    res = ctl("account", "set", account["id"], "--header", "Authorization=x", code=1)
    assert "set by the gateway" in res.stderr


def test_account_enable_clears_error_and_disable_takes_it_out(gateway, ctl):
    t = gateway.new_tenant()
    aid = t.account["id"]
    status, _, raw = gateway.post_messages(harness.messages_body(mock={"status": 401}),
                                           key=t.api_key)
    assert status == 502, raw
    shown = ctl.json("account", "show", aid)
    assert shown["status"] == "error" and shown["state"]["error"] is True
    assert shown["error_message"]
    assert "error" in ctl("account", "show", aid).stdout
    status, _, raw = gateway.post_messages(harness.messages_body(), key=t.api_key)
    assert status == 503, raw

    enabled = ctl.json("account", "enable", aid)
    assert enabled["status"] == "active" and enabled["state"]["error"] is False
    assert not enabled["error_message"]
    status, _, raw = gateway.post_messages(harness.messages_body(), key=t.api_key)
    assert status == 200, raw

    assert ctl.json("account", "disable", aid)["status"] == "disabled"
    line = [l for l in ctl("account", "list").stdout.splitlines() if t.account["name"] in l]
    assert line and "disabled" in line[0]
    status, _, raw = gateway.post_messages(harness.messages_body(), key=t.api_key)
    assert status == 503, raw


def test_limits_schedulable_and_clear_cooldown(gateway, ctl, tmp_path):
    user = ctl.json("user", "add", "--name", gateway.unique("ctl-user"), "--balance", "10",
                    "--concurrency", "4")
    assert user["concurrency"] == 4
    assert gateway.admin_ok("GET", "/admin/users/%d" % user["id"])["concurrency"] == 4
    assert "4 in flight" in ctl("user", "show", user["id"]).stdout
    ctl("user", "set", user["id"], "--concurrency", "0")
    assert gateway.admin_ok("GET", "/admin/users/%d" % user["id"])["concurrency"] == 0
    res = ctl("user", "set", user["id"], "--concurrency", "-1", code=2)
    assert "negative" in res.stderr

    group = ctl.json("group", "add", "--name", gateway.unique("ctl-group"))
    res = ctl("key", "add", "--user", user["id"], "--group", group["id"], "--concurrency", "2")
    api_key = [l.strip() for l in res.stdout.splitlines() if l.strip().startswith("sk-s2a-")][0]
    key = [k for k in gateway.admin_ok("GET", "/admin/keys")["data"]
           if k["user_id"] == user["id"]][0]
    assert key["concurrency"] == 2 and key["rpm_limit"] == 0

    # An unschedulable account keeps its status but serves nothing.
    cred_file = write_secret(tmp_path, "cred", credential())
    account = ctl.json("account", "add", "--name", gateway.unique("ctl-acct"),
                       "--credential-file", cred_file, "--endpoint", gateway.mock.url,
                       "--group", group["id"], "--schedulable", "no")
    aid, path = account["id"], "/admin/accounts/%d" % account["id"]
    shown = gateway.admin_ok("GET", path)
    assert shown["schedulable"] is False and shown["status"] == "active"
    line = [l for l in ctl("account", "list").stdout.splitlines() if account["name"] in l]
    assert line and "unschedulable" in line[0]
    status, _, raw = gateway.post_messages(harness.messages_body(), key=api_key)
    assert status == 503, raw
    assert gateway.mock_requests() == []
    ctl("account", "set", aid, "--schedulable", "yes")
    assert gateway.admin_ok("GET", path)["schedulable"] is True
    status, _, raw = gateway.post_messages(harness.messages_body(), key=api_key)
    assert status == 200, raw

    # An upstream 429 rests the account; clear-cooldown ends the rest.
    gateway.expect_error(r"S2A0205")
    status, _, raw = gateway.post_messages(harness.messages_body(mock={"status": 429}),
                                           key=api_key)
    assert status == 429, raw
    assert gateway.admin_ok("GET", path)["state"]["rate_limited_until"] > 0
    shown = ctl("account", "show", aid).stdout
    assert "rate_limited until" in shown and "5-hour window" in shown
    status, _, raw = gateway.post_messages(harness.messages_body(), key=api_key)
    assert status == 503, raw
    cleared = ctl.json("account", "clear-cooldown", aid)
    assert cleared["state"]["rate_limited_until"] == 0 and cleared["status"] == "active"
    state = gateway.admin_ok("GET", path)["state"]
    assert state["rate_limited_until"] == 0 and state["overloaded_until"] == 0
    assert set(state["window_5h"]) == {"status", "reset_at"}
    status, _, raw = gateway.post_messages(harness.messages_body(), key=api_key)
    assert status == 200, raw

    # One request a minute for the key: the second never reaches the upstream.
    ctl("key", "set", key["id"], "--rpm", "1", "--concurrency", "0")
    changed = gateway.admin_ok("GET", "/admin/keys/%d" % key["id"])
    assert changed["rpm_limit"] == 1 and changed["concurrency"] == 0
    assert "1 per minute" in ctl("key", "show", key["id"]).stdout
    harness.within_one_minute(10)
    gateway.mock_clear()
    status, _, raw = gateway.post_messages(harness.messages_body(), key=api_key)
    assert status == 200, raw
    status, _, raw = gateway.post_messages(harness.messages_body(), key=api_key)
    assert status == 429, raw
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"
    assert len(gateway.mock_requests()) == 1
    ctl("key", "set", key["id"], "--rpm", "0")
    assert gateway.admin_ok("GET", "/admin/keys/%d" % key["id"])["rpm_limit"] == 0
    status, _, raw = gateway.post_messages(harness.messages_body(), key=api_key)
    assert status == 200, raw

    # clear-cooldown leaves a rejected credential in error.
    status, _, raw = gateway.post_messages(harness.messages_body(mock={"status": 401}),
                                           key=api_key)
    assert status == 502, raw
    still = ctl.json("account", "clear-cooldown", aid)
    assert still["status"] == "error" and still["state"]["error"] is True
    status, _, raw = gateway.post_messages(harness.messages_body(), key=api_key)
    assert status == 503, raw


# ---------------------------------------------------------------- billing, subscriptions,
# redeem codes, usage filters and summaries, the balance log

HAIKU = "claude-3-5-haiku-20241022"
SUM_FIELDS = ("requests", "input_tokens", "output_tokens", "cache_creation_tokens",
              "cache_read_tokens", "total_cost_nanousd", "actual_cost_nanousd")


def usd(nano):
    """nano-USD as the CLI and the API print it: exact, trailing zeros trimmed."""
    return format(decimal.Decimal(int(nano)).scaleb(-9).normalize(), "f")


def sums(rows, key):
    """The usage rows summed per key(row), as GET /admin/usage/summary sums them."""
    out = {}
    for r in rows:
        entry = out.setdefault(key(r), dict.fromkeys(SUM_FIELDS, 0))
        entry["requests"] += 1
        for f in SUM_FIELDS[1:]:
            entry[f] += r[f]
    return out


def summary_entries(summary, *keys):
    return {tuple(e[k] for k in keys) if len(keys) > 1 else e[keys[0]]:
            {f: e[f] for f in SUM_FIELDS} for e in summary["data"]}


def printed_codes(stdout):
    return [line.strip() for line in stdout.splitlines() if line.strip().startswith("rc-")]


def test_help_names_every_command():
    top = subprocess.run([sys.executable, str(CTL), "--help"], capture_output=True, text=True,
                         timeout=30)
    for name in ("subscription", "redeem-code", "balance-log", "usage", "prices"):
        assert name in top.stdout
    for cmd in (["subscription", "add"], ["subscription", "extend"], ["subscription", "set"],
                ["redeem-code", "add"], ["redeem-code", "list"], ["usage", "summary"],
                ["usage", "list"], ["balance-log"], ["group", "add"], ["prices", "list"],
                ["prices", "check"]):
        res = subprocess.run([sys.executable, str(CTL)] + cmd + ["--help"], capture_output=True,
                             text=True, timeout=30)
        assert res.returncode == 0 and res.stdout.startswith("usage: sub2apictl"), (cmd, res)
    summary = subprocess.run([sys.executable, str(CTL), "usage", "summary", "--help"],
                             capture_output=True, text=True, timeout=30).stdout
    assert "--split" in summary and "--from" in summary and "--model" in summary


def test_group_billing_type_and_allowances(gateway, ctl):
    name = gateway.unique("ctl-subgroup")
    group = ctl.json("group", "add", "--name", name, "--billing-type", "subscription",
                     "--daily-limit", "0.01", "--monthly-limit", "100")
    gid, path = group["id"], "/admin/groups/%d" % group["id"]
    got = gateway.admin_ok("GET", path)
    assert got["billing_type"] == "subscription"
    assert (got["daily_limit_nanousd"], got["weekly_limit_nanousd"],
            got["monthly_limit_nanousd"]) == (10_000_000, 0, 100 * 10**9)
    line = [l for l in ctl("group", "list").stdout.splitlines() if name in l]
    assert line and "subscription" in line[0] and "0.01" in line[0] and "100" in line[0], line
    shown = ctl("group", "show", gid).stdout
    assert "0.01 USD" in shown and "no limit" in shown and "subscription" in shown

    ctl("group", "set", gid, "--weekly-limit", "2.5", "--daily-limit", "0",
        "--billing-type", "balance")
    got = gateway.admin_ok("GET", path)
    assert got["billing_type"] == "balance"
    assert (got["daily_limit_nanousd"], got["weekly_limit_nanousd"],
            got["monthly_limit_nanousd"]) == (0, 2_500_000_000, 100 * 10**9)

    # bad input: a clear usage error, and nothing changes
    for bad, why in ((("--daily-limit", "-1"), "must not be negative"),
                     (("--weekly-limit", "1,5"), "not a decimal USD amount"),
                     (("--monthly-limit", "0.1f"), "not a decimal USD amount"),
                     (("--billing-type", "credit"), "invalid choice")):
        res = ctl("group", "set", gid, "--name", gateway.unique("renamed"), *bad, code=2)
        assert why in res.stderr and bad[0] in res.stderr, res.stderr
    assert gateway.admin_ok("GET", path) == got
    other = gateway.unique("ctl-subgroup")
    res = ctl("group", "add", "--name", other, "--daily-limit", "lots", code=2)
    assert "--daily-limit" in res.stderr
    assert other not in [g["name"] for g in gateway.admin_ok("GET", "/admin/groups")["data"]]


def test_subscription_commands(gateway, ctl):
    group = gateway.create_group(billing_type="subscription", daily_limit_usd="1")
    user = gateway.create_user(balance_usd="0")
    uid, gid = user["id"], group["id"]
    made = gateway.create_key(uid, gid)
    key = made["key"]
    gateway.create_account([gid])
    body = harness.messages_body()
    status, _, raw = gateway.post_messages(body, key=key)
    assert status == 403, raw

    before = time.time()
    res = ctl("subscription", "add", "--user", uid, "--group", gid, "--days", "30")
    assert "note" not in res.stderr
    [sub] = gateway.admin_ok("GET", "/admin/subscriptions?user_id=%d" % uid)["data"]
    sid = sub["id"]
    assert sub["group_id"] == gid and sub["status"] == "active"
    assert abs(sub["expires_at"] - (before + 30 * 86400)) < 60
    assert "1 USD used" in res.stdout and "active" in res.stdout
    status, _, raw = gateway.post_messages(body, key=key)
    assert status == 200, raw
    [row] = gateway.wait_usage({"user_id": uid})
    cost = row["total_cost_nanousd"]
    assert row["billing_type"] == "subscription" and cost > 0

    shown = ctl("subscription", "show", sid).stdout
    assert "%s of 1 USD used" % usd(cost) in shown, shown
    assert group["name"] in shown
    listed = ctl("subscription", "list", "--user", uid).stdout
    line = [l for l in listed.splitlines() if l.split()[:1] == [str(sid)]]
    assert line and "active" in line[0] and usd(cost) in line[0], listed
    assert [s["id"] for s in ctl.json("subscription", "list", "--group", gid)["data"]] == [sid]
    assert ctl.json("subscription", "list", "--user", uid, "--group", gid + 1)["data"] == []

    # extend, by id or by adding again
    longer = ctl.json("subscription", "extend", sid, "--days", "2")
    assert longer["id"] == sid and longer["expires_at"] == sub["expires_at"] + 2 * 86400
    again = ctl.json("subscription", "add", "--user", uid, "--group", gid, "--days", "1")
    assert again["id"] == sid and again["expires_at"] == longer["expires_at"] + 86400

    # end it, then give it an end as a date
    past = int(time.time()) - 10
    assert ctl.json("subscription", "set", sid, "--expires-at", past)["expires_at"] == past
    assert "ended" in ctl("subscription", "show", sid).stdout
    status, _, raw = gateway.post_messages(body, key=key)
    assert status == 403, raw
    ends = calendar.timegm((2099, 1, 1, 0, 0, 0))
    assert ctl.json("subscription", "set", sid, "--expires-at", "2099-01-01")["expires_at"] == ends
    assert gateway.admin_ok("GET", "/admin/subscriptions/%d" % sid)["expires_at"] == ends
    # keys take dates too
    assert ctl.json("key", "set", made["id"], "--expires-at", "2099-01-01T00:00:00Z")[
        "expires_at"] == ends
    status, _, raw = gateway.post_messages(body, key=key)
    assert status == 200, raw

    assert ctl.json("subscription", "disable", sid)["status"] == "disabled"
    assert "disabled" in ctl("subscription", "list", "--user", uid).stdout
    status, _, raw = gateway.post_messages(body, key=key)
    assert status == 403, raw
    assert ctl.json("subscription", "enable", sid)["status"] == "active"
    status, _, raw = gateway.post_messages(body, key=key)
    assert status == 200, raw

    # bad input
    for days in ("-3", "0", "36501", "two"):
        res = ctl("subscription", "add", "--user", uid, "--group", gid, "--days", days, code=2)
        assert "--days" in res.stderr and res.stdout == "", res.stderr
    assert "1 to 36500" in ctl("subscription", "extend", sid, "--days", "-3", code=2).stderr
    assert gateway.admin_ok("GET", "/admin/subscriptions/%d" % sid)["expires_at"] == ends
    res = ctl("subscription", "add", "--user", "999999999", "--group", gid, "--days", "1",
              code=1)
    assert "No such user or group" in res.stderr and "404" in res.stderr
    res = ctl("subscription", "show", "999999999", code=1)
    assert "No such subscription" in res.stderr
    assert "nothing to change" in ctl("subscription", "set", sid, code=1).stderr
    res = ctl("subscription", "set", sid, "--expires-at", "tomorrow", code=2)
    assert "not a time" in res.stderr
    assert [s["id"] for s in gateway.admin_ok(
        "GET", "/admin/subscriptions?user_id=%d" % uid)["data"]] == [sid]

    # a subscription to a group billed by balance is made, with a note
    plain = gateway.create_group()
    res = ctl("subscription", "add", "--user", uid, "--group", plain["id"], "--days", "1")
    assert "billed by balance" in res.stderr


def test_redeem_code_commands(gateway, ctl):
    t = gateway.new_tenant(balance_usd="1")
    uid = t.user["id"]
    before = len(gateway.admin_ok("GET", "/admin/redeem_codes")["data"])

    res = ctl("redeem-code", "add", "--count", "2", "--balance", "2.50")
    codes = printed_codes(res.stdout)
    assert len(codes) == 2 and len(set(codes)) == 2, res.stdout
    assert "only" in res.stdout.lower() and "2.50 USD" in res.stdout
    listed = gateway.admin_ok("GET", "/admin/redeem_codes")["data"]
    assert len(listed) == before + 2
    mine = listed[-2:]
    assert all(c["kind"] == "balance" and c["amount_nanousd"] == 2_500_000_000 and
               c["used_by"] == 0 for c in mine)
    # never shown again
    table = ctl("redeem-code", "list").stdout
    as_json = ctl("redeem-code", "list", "--json").stdout
    assert not any(c in table or c in as_json for c in codes)
    assert all(c["prefix"] in table for c in mine)

    # a code works once, through POST /v1/redeem with the user's key
    status, _, raw = gateway.post_messages({"code": codes[0]}, key=t.api_key, path="/v1/redeem")
    assert status == 200, raw
    assert gateway.admin_ok("GET", "/admin/users/%d" % uid)["balance_nanousd"] == 3_500_000_000
    status, _, raw = gateway.post_messages({"code": codes[0]}, key=t.api_key, path="/v1/redeem")
    assert status == 400, raw
    [used] = [c for c in mine if codes[0].startswith(c["prefix"].rstrip("."))]
    [unused] = [c for c in mine if c["id"] != used["id"]]
    used_ids = [c["id"] for c in ctl.json("redeem-code", "list", "--used")["data"]]
    unused_ids = [c["id"] for c in ctl.json("redeem-code", "list", "--unused")["data"]]
    assert used["id"] in used_ids and used["id"] not in unused_ids
    assert unused["id"] in unused_ids and unused["id"] not in used_ids
    line = [l for l in ctl("redeem-code", "list", "--used").stdout.splitlines()
            if l.split()[:1] == [str(used["id"])]]
    assert line and str(uid) in line[0].split(), line
    log = ctl.json("balance-log", "--user", uid)["data"]
    assert (log[0]["kind"], log[0]["delta_nanousd"]) == ("redeem", 2_500_000_000)
    assert "redeem" in ctl("balance-log", "--user", uid).stdout

    # days of a subscription
    group = gateway.create_group(billing_type="subscription")
    res = ctl("redeem-code", "add", "--group", group["id"], "--days", "3")
    [code] = printed_codes(res.stdout)
    assert "3 days" in res.stdout
    status, _, raw = gateway.post_messages({"code": code}, key=t.api_key, path="/v1/redeem")
    assert status == 200, raw
    [sub] = ctl.json("subscription", "list", "--user", uid)["data"]
    assert sub["group_id"] == group["id"] and abs(sub["expires_at"] - time.time() - 3 * 86400) < 60
    assert "3 days of group %d" % group["id"] in ctl("redeem-code", "list").stdout

    # bad input makes no codes
    for bad in (["--count", "0", "--balance", "1"], ["--count", "1001", "--balance", "1"],
                ["--balance", "abc"], ["--balance", "0"], ["--balance", "-5"],
                ["--balance", "1", "--group", group["id"], "--days", "1"],
                ["--group", group["id"]], ["--days", "3"],
                ["--group", group["id"], "--days", "-1"], []):
        res = ctl("redeem-code", "add", *bad, code=2)
        assert "error:" in res.stderr and not printed_codes(res.stdout), (bad, res.stderr)
    res = ctl("redeem-code", "add", "--group", "999999999", "--days", "1", code=1)
    assert "No such group" in res.stderr
    assert len(gateway.admin_ok("GET", "/admin/redeem_codes")["data"]) == before + 3


def test_usage_filters_paging_and_summary(gateway, ctl):
    a = gateway.new_tenant(rate_multiplier="1.5")
    b = gateway.new_tenant()
    a2 = gateway.create_key(a.user["id"], a.group["id"])
    sends = [(a.api_key, harness.DEFAULT_MODEL, {"input_tokens": 1000, "output_tokens": 100}),
             (a.api_key, HAIKU, {"input_tokens": 2000, "output_tokens": 50}),
             (a2["key"], harness.DEFAULT_MODEL, {"input_tokens": 300, "output_tokens": 30}),
             (b.api_key, harness.DEFAULT_MODEL, {"input_tokens": 100, "output_tokens": 10})]
    for key, model, usage in sends:
        status, _, raw = gateway.post_messages(harness.messages_body(model=model,
                                                                     mock={"usage": usage}),
                                               key=key)
        assert status == 200, raw
    rows_a = gateway.wait_usage({"user_id": a.user["id"]}, count=3)
    rows_b = gateway.wait_usage({"user_id": b.user["id"]}, count=1)
    assert len(rows_a) == 3 and len(rows_b) == 1
    rows = rows_a + rows_b
    ua, ub = a.user["id"], b.user["id"]

    def ids(*args):
        return sorted(r["id"] for r in ctl.json("usage", *args)["data"])

    def ids_of(pred):
        return sorted(r["id"] for r in rows if pred(r))

    assert ids("--user", ua) == ids_of(lambda r: r["user_id"] == ua)
    assert ids("--key", a.key["id"]) == ids_of(lambda r: r["api_key_id"] == a.key["id"])
    assert len(ids("--key", a.key["id"])) == 2
    assert ids("--key", a2["id"]) == ids_of(lambda r: r["api_key_id"] == a2["id"])
    assert ids("--account", b.account["id"]) == ids_of(lambda r: r["user_id"] == ub)
    assert ids("--group", a.group["id"]) == ids_of(lambda r: r["user_id"] == ua)
    assert ids("--user", ua, "--model", HAIKU) == ids_of(lambda r: r["model"] == HAIKU)
    listed = ctl.json("usage", "list", "--user", ua, "--model", HAIKU)["data"]
    assert sorted(r["id"] for r in listed) == ids_of(lambda r: r["model"] == HAIKU)
    first = min(r["created_at"] for r in rows_a)
    last = max(r["created_at"] for r in rows_a)
    assert ids("--user", ua, "--from", last + 1) == []
    assert ids("--user", ua, "--to", first) == []
    assert ids("--user", ua, "--from", first, "--to", last + 1) == ids("--user", ua)
    day = time.strftime("%Y-%m-%d", time.gmtime(first))
    assert ids("--user", ua, "--from", day) == ids("--user", ua)
    assert ids("--user", ua, "--to", day + "T00:00:00Z") == []
    table = ctl("usage", "--user", ua, "--model", HAIKU).stdout
    assert HAIKU in table and "1 row," in table and "--before-id" not in table

    # keyset paging: the hint names the last id of a full page
    page = ctl("usage", "--user", ua, "--limit", "2").stdout
    assert "2 rows" in page
    cursor = int(re.search(r"--before-id (\d+)", page).group(1))
    p1 = ctl.json("usage", "--user", ua, "--limit", "2")["data"]
    assert cursor == p1[-1]["id"]
    p2 = ctl.json("usage", "--user", ua, "--limit", "2", "--before-id", cursor)["data"]
    assert len(p2) == 1 and sorted(r["id"] for r in p1 + p2) == ids("--user", ua)
    assert "--before-id" not in ctl("usage", "--user", ua, "--limit", "2", "--before-id",
                                    cursor).stdout

    # summaries match the rows the requests made
    by_model = ctl.json("usage", "summary", "--by", "model", "--user", ua)
    assert by_model["by"] == "model" and "split" not in by_model
    assert summary_entries(by_model, "model") == sums(rows_a, lambda r: r["model"])
    table = ctl("usage", "summary", "--by", "model", "--user", ua).stdout
    for model, e in sums(rows_a, lambda r: r["model"]).items():
        line = [l for l in table.splitlines() if l.startswith(model + " ")]
        assert line and usd(e["actual_cost_nanousd"]) in line[0].split(), table
        assert usd(e["total_cost_nanousd"]) in line[0].split()
    total = sum(r["actual_cost_nanousd"] for r in rows_a)
    listed = sum(r["total_cost_nanousd"] for r in rows_a)
    assert total != listed  # the multiplier of 1.5
    assert "3 requests, %s USD charged (%s USD at list price)" % (usd(total), usd(listed)) in table

    by_key = ctl.json("usage", "summary", "--by", "key", "--group", a.group["id"])
    assert summary_entries(by_key, "key") == sums(rows_a, lambda r: r["api_key_id"])
    by_account = ctl.json("usage", "summary", "--by", "account", "--user", ub)
    assert summary_entries(by_account, "account") == sums(rows_b, lambda r: r["account_id"])

    split = ctl.json("usage", "summary", "--by", "user", "--split", "account", "--from", first)
    assert split["by"] == "user" and split["split"] == "account"
    ours = {k: v for k, v in summary_entries(split, "user", "account").items()
            if k[0] in (ua, ub)}
    assert ours == sums(rows, lambda r: (r["user_id"], r["account_id"]))
    per_day = ctl.json("usage", "summary", "--by", "day", "--split", "model", "--user", ua)
    assert summary_entries(per_day, "date", "model") == sums(
        rows_a, lambda r: (time.strftime("%Y-%m-%d", time.gmtime(r["created_at"])), r["model"]))
    table = ctl("usage", "summary", "--by", "day", "--split", "model", "--user", ua).stdout
    assert table.splitlines()[0].split()[:2] == ["DATE", "MODEL"]
    assert any(l.startswith(day) and HAIKU in l for l in table.splitlines()), table

    # bad input
    assert "invalid choice" in ctl("usage", "summary", "--by", "week", code=2).stderr
    res = ctl("usage", "summary", "--by", "day", "--split", "day", code=2)
    assert "--split" in res.stderr
    assert "--by" in ctl("usage", "summary", "--split", "model", code=2).stderr
    assert "not a time" in ctl("usage", "--from", "yesterday", code=2).stderr
    assert "1 to 10000" in ctl("usage", "--limit", "0", code=2).stderr
    res = ctl("usage", "summary", "--by", "day", "--from", "2025-01-02", "--to", "2025-01-01",
              code=2)
    assert "--to" in res.stderr


def test_balance_log_actor_reason_and_paging(gateway, ctl):
    user = ctl.json("user", "add", "--name", gateway.unique("ctl-user"), "--balance", "10")
    uid, path = user["id"], "/admin/users/%d" % user["id"]
    ctl("user", "set", uid, "--add-balance", "2.5", "--actor", "ops:alice",
        "--reason", "refund for ticket 4711")
    ctl("user", "set", uid, "--balance", "20")
    log = ctl.json("balance-log", "--user", uid)["data"]
    assert [(e["kind"], e["delta_nanousd"], e["balance_after_nanousd"]) for e in log] == [
        ("set", 7_500_000_000, 20 * 10**9), ("add", 2_500_000_000, 12_500_000_000),
        ("set", 10 * 10**9, 10 * 10**9)]
    assert (log[1]["actor"], log[1]["reason"]) == ("ops:alice", "refund for ticket 4711")
    assert log[0]["actor"] == "admin"
    assert gateway.admin_ok("GET", "/admin/balance_log?user_id=%d" % uid)["data"] == log
    table = ctl("balance-log", "--user", uid).stdout
    line = [l for l in table.splitlines() if "ops:alice" in l]
    assert line and "refund for ticket 4711" in line[0] and "12.5" in line[0].split(), table
    assert "3 changes" in table and "--before-id" not in table

    page = ctl("balance-log", "--user", uid, "--limit", "1").stdout
    assert "1 change; older: --before-id %d" % log[0]["id"] in page
    older = ctl.json("balance-log", "--user", uid, "--limit", "1", "--before-id", log[0]["id"])
    assert [e["id"] for e in older["data"]] == [log[1]["id"]]

    # refused before anything is sent: the name stays, no balance change is logged
    for bad, why in ((("--add-balance", "1", "--actor", "x" * 101), "--actor"),
                     (("--add-balance", "1", "--reason", "y" * 501), "--reason"),
                     (("--add-balance", "1.2.3"), "decimal"),
                     (("--reason", "why"), "--balance or --add-balance")):
        res = ctl("user", "set", uid, "--name", "renamed", *bad, code=2)
        assert why in res.stderr, res.stderr
    after = gateway.admin_ok("GET", path)
    assert after["name"] == user["name"] and after["balance_nanousd"] == 20 * 10**9
    assert len(gateway.admin_ok("GET", "/admin/balance_log?user_id=%d" % uid)["data"]) == 3
    assert "1 to 10000" in ctl("balance-log", "--limit", "10001", code=2).stderr


def test_account_error_codes(gateway, ctl, tmp_path):
    t = gateway.new_tenant()
    aid, path = t.account["id"], "/admin/accounts/%d" % t.account["id"]
    changed = ctl.json("account", "set", aid, "--error-codes", "529", "--error-codes", "429")
    assert changed["custom_error_codes"] == [429, 529]
    assert gateway.admin_ok("GET", path)["custom_error_codes"] == [429, 529]
    assert "429, 529" in ctl("account", "show", aid).stdout
    ctl("account", "set", aid, "--error-codes", "429")
    # a 529 is outside the list now: a plain 500 and no rest for the account
    gateway.expect_error(r"S2A0208|S2A0207")
    status, _, raw = gateway.post_messages(harness.messages_body(mock={"status": 529}),
                                           key=t.api_key)
    assert status == 500, raw
    assert gateway.admin_ok("GET", path)["state"]["overloaded_until"] == 0
    assert ctl.json("account", "set", aid, "--clear-error-codes")["custom_error_codes"] is None
    assert "every upstream error counts" in ctl("account", "show", aid).stdout
    for bad in ("200", "abc", "429,"):
        res = ctl("account", "set", aid, "--error-codes", bad, code=2)
        assert "--error-codes" in res.stderr
    assert gateway.admin_ok("GET", path)["custom_error_codes"] is None

    cred_file = write_secret(tmp_path, "cred", credential())
    account = ctl.json("account", "add", "--name", gateway.unique("ctl-acct"),
                       "--credential-file", cred_file, "--endpoint", gateway.mock.url,
                       "--group", t.group["id"], "--error-codes", "429,529")
    assert gateway.admin_ok("GET", "/admin/accounts/%d" % account["id"])[
        "custom_error_codes"] == [429, 529]


def test_status_is_told_alike_by_the_api_the_metrics_and_the_cli(gateway, ctl):
    """One vocabulary: accounts put in each status (upstream 429, 529 and 401
    answers from the mock, a rejected 5-hour window, an operator's changes)
    are named alike by the admin API, the metrics and `account show`."""
    gateway.expect_error(r"S2A0205|S2A0207|S2A0204")
    now = int(time.time())
    tenants = {name: gateway.new_tenant() for name in (
        "active", "rate_limited", "overloaded", "window_rejected", "error", "unschedulable",
        "disabled")}
    answers = {
        "rate_limited": ({"status": 429,
                          "headers": {"anthropic-ratelimit-unified-reset": str(now + 3600)}},
                         429),
        "overloaded": ({"status": 529}, 503),
        "window_rejected": ({"headers": {"anthropic-ratelimit-unified-5h-status": "rejected",
                                         "anthropic-ratelimit-unified-5h-reset":
                                             str(now + 3 * 3600)}}, 200),
        "error": ({"status": 401}, 502),
    }
    for name, (mock, want) in answers.items():
        status, _, raw = gateway.post_messages(harness.messages_body(mock=mock),
                                               key=tenants[name].api_key)
        assert status == want, (name, raw)
    gateway.admin_ok("PATCH", "/admin/accounts/%d" % tenants["unschedulable"].account["id"],
                     {"schedulable": False})
    gateway.admin_ok("PATCH", "/admin/accounts/%d" % tenants["disabled"].account["id"],
                     {"status": "disabled"})

    status, _, raw = gateway.get("/metrics")
    assert status == 200, raw
    scraped = {}
    for family in text_string_to_metric_families(raw.decode()):
        for sample in family.samples:
            if sample.name == "sub2api_account_state" and sample.value == 1:
                scraped.setdefault(sample.labels["account"], []).append(sample.labels["state"])

    for name, t in tenants.items():
        aid = t.account["id"]
        state = gateway.admin_ok("GET", "/admin/accounts/%d" % aid)["state"]
        assert state["status"] == name, (name, state)
        assert scraped[str(aid)] == [name], (name, scraped.get(str(aid)))
        shown = [line for line in ctl("account", "show", aid).stdout.splitlines()
                 if line.startswith("state:")]
        assert shown and shown[0].split()[1] == name, (name, shown)
        listed = [line for line in ctl("account", "list").stdout.splitlines()
                  if t.account["name"] in line]
        assert listed and name in listed[0].split(), (name, listed)
        if name in ("rate_limited", "overloaded", "window_rejected"):
            assert state["status_until"] > now and "until" in shown[0], (name, state, shown)
        else:
            assert state["status_until"] == 0 and "until" not in shown[0], (name, state)
    limited = gateway.admin_ok("GET", "/admin/accounts/%d"
                               % tenants["rate_limited"].account["id"])["state"]
    assert limited["status_until"] == limited["rate_limited_until"]
    rejected = gateway.admin_ok("GET", "/admin/accounts/%d"
                                % tenants["window_rejected"].account["id"])["state"]
    assert rejected["status_until"] == rejected["window_5h"]["reset_at"] == now + 3 * 3600


# ---------------------------------------------------------------- price tables

def test_prices_list_and_check(gateway, ctl, tmp_path):
    """`prices list` shows the table in service; `prices check FILE` reads a
    new one with the gateway's rules and compares it with that one: models
    added, removed and repriced, and the models of recent usage it would
    refuse (exit status 1 then, and when the file would be refused)."""
    t = gateway.new_tenant()
    for model in (HAIKU, "claude-sonnet-4-20250514"):
        status, _, raw = gateway.post_messages(harness.messages_body(model=model),
                                               key=t.api_key)
        assert status == 200, raw
    gateway.wait_usage({"key_id": t.key["id"]}, count=2)

    out = ctl("prices", "list").stdout
    line = [l for l in out.splitlines() if l.startswith("claude-sonnet-4-5-20250929 ")][0]
    assert line.split()[1:6] == ["3", "15", "3.75", "6", "0.3"], line
    assert ">200k: 6/22.5" in line and line.split()[-1] == "-"
    line = [l for l in out.splitlines() if l.startswith("claude-sonnet-4-20250514 ")][0]
    assert line.split()[-1] == "0.01", line
    assert "4 models from %s" % gateway.httpd.prices in out

    # the table in service, checked again: nothing to say
    res = ctl("prices", "check", gateway.httpd.prices)
    assert "added: none" in res.stdout and "removed: none" in res.stdout
    assert "changed prices: none" in res.stdout and res.stdout.rstrip().endswith(
        "OK: the gateway would load this table and price every model in use")

    # a new table: haiku gone, a model added, Sonnet 4 dearer, Sonnet 4.5's
    # long-context output changed
    table = json.loads(gateway.httpd.prices.read_text())
    del table[HAIKU]
    table["claude-new-1"] = {"input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06}
    table["claude-sonnet-4-20250514"]["input_cost_per_token"] = 3.5e-06
    table["claude-sonnet-4-5-20250929"]["output_cost_per_token_above_200k_tokens"] = 3e-05
    table["claude-sonnet-4-20250514"]["search_context_cost_per_query"] = 0.015
    new = tmp_path / "new.json"
    new.write_text(json.dumps(table, indent=2))
    res = ctl("prices", "check", new, code=1)
    assert "added: claude-new-1" in res.stdout
    assert "removed: %s" % HAIKU in res.stdout
    assert re.search(r"claude-sonnet-4-20250514\s+in\s+3\s+3\.5", res.stdout), res.stdout
    assert re.search(r"claude-sonnet-4-5-20250929\s+out>200k\s+22\.5\s+30", res.stdout)
    assert re.search(r"web search \(USD each\)\s+0\.01\s+0\.015", res.stdout), res.stdout
    assert re.search(r"refused: %s \(\d+ requests?\)" % HAIKU, res.stdout), res.stdout
    assert res.stdout.rstrip().endswith("NOT OK: see above")
    rep = ctl.json("prices", "check", new, code=1)
    assert rep["valid"] is False and rep["refused"] == [HAIKU]
    assert rep["added"] == ["claude-new-1"] and rep["removed"] == [HAIKU]
    assert {c["model"] for c in rep["changed"]} == {"claude-sonnet-4-20250514",
                                                    "claude-sonnet-4-5-20250929"}
    assert rep["usage"]["days"] == 30
    used = {u["model"]: u for u in rep["usage"]["models"]}
    assert used["claude-sonnet-4-20250514"]["priced"] == "own"
    assert used[HAIKU]["priced"] == "refused" and used[HAIKU]["requests"] >= 1

    # a broken file: the line and field, without asking the gateway
    new.write_text(json.dumps(table, indent=2).replace('"output_cost_per_token": 5e-06',
                                                       '"output_cost_per_token": -5e-06'))
    lines = new.read_text().splitlines()
    at = [i for i, l in enumerate(lines, 1) if "-5e-06" in l][0]
    for env in ({}, {"SUB2API_URL": None, "SUB2API_ADMIN_TOKEN": None}):
        args = ("prices", "check", new) + (("--offline",) if env else ())
        res = ctl(*args, env=env, code=1)
        assert "%s:%d: error: model \"claude-new-1\": output_cost_per_token is negative" % (
            new, at) in res.stdout, res.stdout
        assert "apachectl configtest fails" in res.stdout
    new.write_text('{\n  "m": {"input_cost_per_token": 1e-06,\n}\n')
    res = ctl("prices", "check", new, "--offline", env={"SUB2API_URL": None}, code=1)
    assert re.search(r"new\.json:3:1: error: invalid JSON", res.stdout), res.stdout
    ctl("prices", "check", tmp_path / "missing.json", "--offline", code=1)
