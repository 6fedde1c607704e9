"""sub2apictl, run as a subprocess the way an operator runs it, against the gateway."""

import json
import os
import secrets
import subprocess
import sys
import time

import pytest

import harness

CTL = harness.REPO / "sub2apictl"


@pytest.fixture
def ctl(gateway):
    """run(*args, env=None, input=None, code=0) -> CompletedProcess; checks the exit code."""
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
        res = subprocess.run([sys.executable, str(CTL)] + [str(a) for a in args],
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
    assert line and gateway.mock.url in line[0] and "ready" in line[0], accounts
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
    res = ctl("user", "set", uid, "--balance", "a lot", code=1)
    assert "balance_usd" in res.stderr

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
    assert changed["headers"] == {"x-team": "blue", "anthropic-beta": "a,b"}
    assert "x-team: blue" in ctl("account", "show", account["id"]).stdout
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
    assert "rate-limited" in shown and "5-hour window" in shown
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
    if time.time() % 60 > 55:  # stay inside one clock minute
        time.sleep(60 - time.time() % 60 + 0.2)
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
