"""The admin API: who may use it, what it stores, and what it never shows."""

import json
import time

import pytest

import harness


def test_admin_requires_the_token(gateway):
    for token in ("", "wrong-token-" + "x" * 20, gateway.admin_token + "x"):
        status, body = gateway.admin("GET", "/admin/users", token=token)
        assert status == 401
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    status, body = gateway.admin("GET", "/admin/users",
                                 headers={"x-api-key": gateway.admin_token}, token="")
    assert status == 401


def test_user_lifecycle_and_exact_money(gateway):
    user = gateway.create_user(balance_usd="12.345678901")
    assert user["balance_nanousd"] == 12345678901
    assert user["balance_usd"] == "12.345678901"
    assert user["status"] == "active"
    user = gateway.admin_ok("PATCH", "/admin/users/%d" % user["id"],
                            {"add_balance_usd": "0.000000099", "name": "renamed"})
    assert user["balance_nanousd"] == 12345679000 and user["name"] == "renamed"
    user = gateway.admin_ok("PATCH", "/admin/users/%d" % user["id"],
                            {"balance_nanousd": -5, "status": "disabled"})
    assert user["balance_nanousd"] == -5 and user["status"] == "disabled"
    listed = gateway.admin_ok("GET", "/admin/users")["data"]
    assert any(u["id"] == user["id"] and u["name"] == "renamed" for u in listed)
    status, body = gateway.admin("GET", "/admin/users/999999")
    assert status == 404 and body["error"]["type"] == "not_found_error"


def test_group_multiplier_is_exact(gateway):
    group = gateway.create_group(rate_multiplier="1.25")
    assert group["rate_multiplier"] == "1.25"
    group = gateway.admin_ok("PATCH", "/admin/groups/%d" % group["id"],
                             {"rate_multiplier": 0.8})
    assert group["rate_multiplier"] == "0.8"


def test_plain_key_is_shown_once_and_stored_hashed(gateway):
    user = gateway.create_user()
    group = gateway.create_group()
    key = gateway.create_key(user["id"], group["id"], name="laptop")
    assert key["key"].startswith("sk-s2a-") and len(key["key"]) == 55
    assert key["key"].startswith(key["prefix"].rstrip("."))
    again = gateway.admin_ok("GET", "/admin/keys/%d" % key["id"])
    assert "key" not in again and again["name"] == "laptop"
    listing = json.dumps(gateway.admin_ok("GET", "/admin/keys"))
    assert key["key"] not in listing
    stored = gateway.db_query("SELECT key_hash FROM s2a_api_keys WHERE id = %d" % key["id"])
    assert len(str(stored[0][0])) == 64 and key["key"] not in json.dumps(
        gateway.db_query("SELECT * FROM s2a_api_keys"), default=str)


def test_account_credential_is_never_returned(gateway):
    group = gateway.create_group()
    secret = "sk-ant-api03-" + "s3cr3t" * 10 + "-ZZ"
    acct = gateway.create_account([group["id"]], credential=secret, priority=7, concurrency=2,
                                  model_mapping={"a": "b"})
    assert acct["endpoint"] == gateway.mock.url
    assert acct["priority"] == 7 and acct["concurrency"] == 2
    assert acct["model_mapping"] == {"a": "b"} and acct["group_ids"] == [group["id"]]
    assert acct["type"] == "apikey" and acct["status"] == "active"
    for body in (acct, gateway.admin_ok("GET", "/admin/accounts/%d" % acct["id"]),
                 gateway.admin_ok("GET", "/admin/accounts")):
        text = json.dumps(body)
        assert secret not in text and "s3cr3ts3cr3t" not in text
    assert acct["credential"].endswith("-ZZ")
    changed = gateway.admin_ok("PATCH", "/admin/accounts/%d" % acct["id"],
                               {"priority": 3, "group_ids": [], "status": "disabled"})
    assert changed["priority"] == 3 and changed["group_ids"] == []
    assert changed["status"] == "disabled"


@pytest.mark.parametrize("path,body,word", [
    ("/admin/users", {}, "name"),
    ("/admin/users", {"name": "x", "balance_usd": "ten"}, "balance"),
    ("/admin/users", {"name": "x", "status": "frozen"}, "status"),
    ("/admin/groups", {"name": "g", "rate_multiplier": "-1"}, "rate_multiplier"),
    ("/admin/keys", {"user_id": "1", "group_id": 1}, "user_id"),
    ("/admin/keys", {"user_id": 999999, "group_id": 999999}, "no such"),
    ("/admin/accounts", {"name": "a", "type": "cookie", "credential": "c",
                         "endpoint": "http://x"}, "type"),
    ("/admin/accounts", {"name": "a", "type": "apikey", "endpoint": "http://x"},
     "credential"),
    ("/admin/accounts", {"name": "a", "type": "apikey", "credential": "c",
                         "endpoint": "http://x", "model_mapping": ["x"]}, "model_mapping"),
    ("/admin/accounts", {"name": "a", "type": "apikey", "credential": "c",
                         "endpoint": "http://x", "group_ids": [999999]}, "group"),
])
def test_bad_admin_input_is_refused(gateway, path, body, word):
    status, answer = gateway.admin("POST", path, body)
    assert status == 400, answer
    assert answer["error"]["type"] == "invalid_request_error"
    assert word in answer["error"]["message"]


def test_admin_body_must_be_json(gateway):
    status, _, raw = harness.http_request(
        gateway.port, "POST", "/admin/users", body=b'{"name": ',
        headers={"Authorization": "Bearer " + gateway.admin_token})
    assert status == 400
    assert json.loads(raw)["error"]["type"] == "invalid_request_error"


def test_unknown_admin_resource_and_method(gateway):
    status, body = gateway.admin("GET", "/admin/nothing")
    assert status == 404
    status, body = gateway.admin("DELETE", "/admin/users/1")
    assert status == 405


def test_usage_filters(gateway):
    a = gateway.new_tenant()
    b = gateway.new_tenant()
    for t in (a, a, b):
        status, _, _ = gateway.post_messages(harness.messages_body(), key=t.api_key)
        assert status == 200
    rows = gateway.wait_usage({"user_id": a.user["id"]}, count=2)
    assert len(rows) == 2 and {r["user_id"] for r in rows} == {a.user["id"]}
    assert rows[0]["id"] > rows[1]["id"]
    rows = gateway.wait_usage({"account_id": b.account["id"]})
    assert len(rows) == 1 and rows[0]["api_key_id"] == b.key["id"]
    rows = gateway.admin_ok("GET", "/admin/usage?user_id=%d&limit=1" % a.user["id"])["data"]
    assert len(rows) == 1
    status, body = gateway.admin("GET", "/admin/usage?limit=0")
    assert status == 400


def test_key_fields_have_their_types(gateway):
    user = gateway.create_user()
    group = gateway.create_group()
    key = gateway.create_key(user["id"], group["id"], expires_at=4102444800)
    for k in (key, gateway.admin_ok("GET", "/admin/keys/%d" % key["id"])):
        assert k["status"] == "active" and k["expires_at"] == 4102444800
        assert isinstance(k["created_at"], int) and k["user_id"] == user["id"]
    k = gateway.admin_ok("PATCH", "/admin/keys/%d" % key["id"], {"status": "disabled"})
    assert k["status"] == "disabled"


def test_patch_of_a_missing_resource_changes_nothing(gateway):
    group = gateway.create_group()
    status, body = gateway.admin("PATCH", "/admin/accounts/987654", {"group_ids": [group["id"]]})
    assert status == 404 and body["error"]["type"] == "not_found_error"
    assert gateway.db_query(
        "SELECT COUNT(*) FROM s2a_account_groups WHERE account_id = 987654")[0][0] in (0, "0")
    for path in ("/admin/users/987654", "/admin/groups/987654", "/admin/keys/987654"):
        status, _ = gateway.admin("PATCH", path, {"name": "x"})
        assert status == 404


def test_rejected_patch_changes_nothing(gateway):
    user = gateway.create_user(name="before")
    status, _ = gateway.admin("PATCH", "/admin/users/%d" % user["id"],
                              {"name": "after", "balance_usd": "lots"})
    assert status == 400
    assert gateway.admin_ok("GET", "/admin/users/%d" % user["id"])["name"] == "before"


def test_patch_whose_last_field_is_bad_changes_nothing(gateway):
    """A body is checked whole before anything is written: the fields before
    the bad one stay as they were."""
    user = gateway.create_user(name=gateway.unique("whole"))
    group = gateway.create_group()
    other = gateway.create_group()
    key = gateway.create_key(user["id"], group["id"])
    acct = gateway.create_account([group["id"]], priority=10)
    cases = [
        ("/admin/users/%d" % user["id"],
         {"name": "changed", "status": "disabled", "concurrency": 3, "balance_usd": "99",
          "actor": "ops", "add_balance_usd": "a lot"}, "add_balance_usd"),
        ("/admin/keys/%d" % key["id"],
         {"name": "changed", "status": "disabled", "rpm_limit": 5, "expires_at": -1},
         "expires_at"),
        ("/admin/groups/%d" % group["id"],
         {"name": gateway.unique("changed"), "rate_multiplier": "2",
          "billing_type": "subscription", "monthly_limit_usd": "-1"}, "monthly_limit_usd"),
        ("/admin/accounts/%d" % acct["id"],
         {"name": "changed", "priority": 1, "status": "disabled", "group_ids": [other["id"]],
          "model_mapping": {"a": "b"}, "custom_error_codes": [429],
          "headers": {"Host": "elsewhere"}}, "Host"),
    ]
    for path, body, word in cases:
        before = gateway.admin_ok("GET", path)
        status, answer = gateway.admin("PATCH", path, body)
        assert status == 400, (path, answer)
        assert answer["error"]["type"] == "invalid_request_error"
        assert word in answer["error"]["message"], (path, answer)
        assert gateway.admin_ok("GET", path) == before, path
    log = gateway.admin_ok("GET", "/admin/balance_log?user_id=%d" % user["id"])["data"]
    assert [e["kind"] for e in log] == ["set"]  # the opening balance only


def test_patch_failing_in_the_database_changes_nothing(gateway):
    """A PATCH is one transaction: when the database refuses a value after
    the row was updated, the update is rolled back with it."""
    taken = gateway.create_group()
    group = gateway.create_group(rate_multiplier="1.5")
    path = "/admin/groups/%d" % group["id"]
    before = gateway.admin_ok("GET", path)
    status, body = gateway.admin("PATCH", path, {
        "rate_multiplier": "3", "billing_type": "subscription", "daily_limit_usd": "5",
        "name": taken["name"]})
    assert status == 409 and body["error"]["message"] == "name: a group of that name exists"
    assert gateway.admin_ok("GET", path) == before

    # the account's columns are updated first, then its groups: one of them
    # is not there, and the columns are as they were
    acct = gateway.create_account([group["id"]], priority=10, concurrency=2)
    path = "/admin/accounts/%d" % acct["id"]
    before = gateway.admin_ok("GET", path)
    status, body = gateway.admin("PATCH", path, {
        "name": "renamed", "priority": 1, "concurrency": 9, "schedulable": False,
        "group_ids": [taken["id"], 987654321]})
    assert status == 400 and body["error"]["message"] == "group_ids: no such group"
    assert gateway.admin_ok("GET", path) == before
    assert gateway.db_query("SELECT COUNT(*) FROM s2a_account_groups WHERE account_id = %d"
                            % acct["id"])[0][0] in (1, "1")

    # a name and a balance change are written together, with the log's row
    user = gateway.create_user(balance_usd="1")
    changed = gateway.admin_ok("PATCH", "/admin/users/%d" % user["id"], {
        "name": "renamed-and-paid", "add_balance_usd": "2", "reason": "together"})
    assert changed["name"] == "renamed-and-paid" and changed["balance_nanousd"] == 3 * 10**9
    log = gateway.admin_ok("GET", "/admin/balance_log?user_id=%d" % user["id"])["data"]
    assert (log[0]["kind"], log[0]["delta_nanousd"], log[0]["reason"]) == (
        "add", 2 * 10**9, "together")


@pytest.mark.parametrize("body,word", [
    ({"name": "line\r\nbreak"}, "control characters"),
    ({"name": "nul\x00byte"}, "control characters"),
    ({"name": "x" * 256}, "at most 255"),
    ({"name": "x", "concurrency": 99999999999999999999}, "concurrency"),
    ({"name": "x", "concurrency": 2.5}, "concurrency"),
    ({"name": "x", "balance_nanousd": 9223372036854775807}, "balance_usd"),
    ({"name": "x", "balance_usd": "1e400"}, "balance_usd"),
])
def test_hostile_values_are_refused(gateway, body, word):
    status, answer = gateway.admin("POST", "/admin/users", body)
    assert status == 400, answer
    assert word in answer["error"]["message"]


def test_group_names_are_unique(gateway):
    group = gateway.create_group()
    status, body = gateway.admin("POST", "/admin/groups", {"name": group["name"]})
    assert status == 409 and "exists" in body["error"]["message"]
    other = gateway.create_group()
    status, _ = gateway.admin("PATCH", "/admin/groups/%d" % other["id"], {"name": group["name"]})
    assert status == 409


def test_usage_filters_must_be_numbers(gateway):
    status, body = gateway.admin("GET", "/admin/usage?user_id=abc")
    assert status == 400 and "user_id" in body["error"]["message"]


def test_schedulable_and_clear_cooldown(gateway):
    t = gateway.new_tenant()
    acct = "/admin/accounts/%d" % t.account["id"]
    assert gateway.admin_ok("GET", acct)["schedulable"] is True
    assert gateway.admin_ok("PATCH", acct, {"schedulable": False})["schedulable"] is False
    status, _, _ = gateway.post_messages(harness.messages_body(), key=t.api_key)
    assert status == 503
    gateway.admin_ok("PATCH", acct, {"schedulable": True})
    assert gateway.post_messages(harness.messages_body(), key=t.api_key)[0] == 200

    gateway.expect_error(r"S2A0205")
    status, _, _ = gateway.post_messages(harness.messages_body(mock={"status": 429}),
                                         key=t.api_key)
    assert status == 429
    assert gateway.admin_ok("GET", acct)["state"]["rate_limited_until"] > 0
    assert gateway.post_messages(harness.messages_body(), key=t.api_key)[0] == 503
    state = gateway.admin_ok("PATCH", acct, {"clear_cooldown": True})["state"]
    assert state["rate_limited_until"] == 0
    assert gateway.post_messages(harness.messages_body(), key=t.api_key)[0] == 200
    status, body = gateway.admin("PATCH", acct, {"schedulable": "no"})
    assert status == 400


def test_five_hour_window_is_tracked_and_hidden_from_clients(gateway):
    t = gateway.new_tenant()
    acct = "/admin/accounts/%d" % t.account["id"]
    reset = int(time.time()) + 3000
    status, headers, _ = gateway.post_messages(harness.messages_body(mock={"headers": {
        "anthropic-ratelimit-unified-5h-status": "allowed_warning",
        "anthropic-ratelimit-unified-5h-reset": str(reset)}}), key=t.api_key)
    assert status == 200
    assert not [h for h in headers if h.startswith("anthropic-ratelimit")]
    window = gateway.admin_ok("GET", acct)["state"]["window_5h"]
    assert window == {"status": "allowed_warning", "reset_at": reset}
    # a rejected window rests the account until it resets
    status, _, _ = gateway.post_messages(harness.messages_body(mock={"headers": {
        "anthropic-ratelimit-unified-5h-status": "rejected",
        "anthropic-ratelimit-unified-5h-reset": str(reset)}}), key=t.api_key)
    assert status == 200
    state = gateway.admin_ok("GET", acct)["state"]
    assert state["window_5h"]["status"] == "rejected"
    assert state["rate_limited_until"] == reset
    assert gateway.post_messages(harness.messages_body(), key=t.api_key)[0] == 503


def test_credentials_are_sealed_at_rest(gateway):
    t = gateway.new_tenant()
    [(stored,)] = gateway.db_query(
        "SELECT credential FROM s2a_accounts WHERE id = %d" % t.account["id"])
    assert stored.startswith("s2a-gcm1:")
    assert t.credential not in stored and t.credential[-20:] not in stored
    status, _, _ = gateway.post_messages(harness.messages_body(), key=t.api_key)
    assert status == 200
    assert gateway.mock_requests()[0]["headers"]["x-api-key"] == t.credential
    assert gateway.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])[
        "credential"].endswith(t.credential[-4:])


def test_credentials_sealed_with_another_key_do_not_serve(gateway):
    t = gateway.new_tenant()
    other = gateway.httpd.root / "other.key"
    other.write_text("ab" * 32 + "\n")
    gateway.expect_error(r"S2A0102")
    try:
        gateway.reload('Sub2apiCredentialKeyFile "%s"' % other)
        status, _, _ = gateway.post_messages(harness.messages_body(), key=t.api_key)
        assert status == 503
        acct = gateway.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])
        assert acct["credential"] == "(sealed with another key)"
        assert gateway.mock_requests() == []
    finally:
        gateway.reload("")
    status, _, _ = gateway.post_messages(harness.messages_body(), key=t.api_key)
    assert status == 200


# ---- the balance ledger ----

def test_balance_changes_are_recorded_with_actor_and_reason(gateway):
    user = gateway.create_user(balance_usd="10")
    uid = user["id"]
    gateway.admin_ok("PATCH", "/admin/users/%d" % uid,
                     {"add_balance_usd": "2.5", "actor": "ops:alice",
                      "reason": "refund for ticket 4711"})
    user = gateway.admin_ok("PATCH", "/admin/users/%d" % uid, {"balance_usd": "3"})
    assert user["balance_nanousd"] == 3_000_000_000
    log = gateway.admin_ok("GET", "/admin/balance_log?user_id=%d" % uid)["data"]
    assert [(e["kind"], e["delta_nanousd"], e["balance_after_nanousd"], e["actor"], e["reason"])
            for e in log] == [
        ("set", -9_500_000_000, 3_000_000_000, "admin", ""),
        ("add", 2_500_000_000, 12_500_000_000, "ops:alice", "refund for ticket 4711"),
        ("set", 10_000_000_000, 10_000_000_000, "admin", ""),  # the opening balance
    ]
    # pages, newest first
    older = gateway.admin_ok("GET", "/admin/balance_log?user_id=%d&before_id=%d&limit=5"
                             % (uid, log[0]["id"]))["data"]
    assert [e["id"] for e in older] == [log[1]["id"], log[2]["id"]]
    # a refused change changes nothing
    for bad in ({"add_balance_usd": "1", "actor": 5}, {"add_balance_usd": "1", "reason": "x" * 501},
                {"add_balance_usd": "1", "actor": "y" * 101}):
        status, body = gateway.admin("PATCH", "/admin/users/%d" % uid, bad)
        assert status == 400, body
    assert gateway.admin_ok("GET", "/admin/users/%d" % uid)["balance_nanousd"] == 3_000_000_000
    assert len(gateway.admin_ok("GET", "/admin/balance_log?user_id=%d" % uid)["data"]) == 3
    for query in ("user_id=x", "before_id=1.5", "limit=0"):
        status, _ = gateway.admin("GET", "/admin/balance_log?" + query)
        assert status == 400


# ---- usage queries ----

def test_usage_filters_pages_and_sums(gateway):
    t = gateway.new_tenant()
    sonnet, haiku = "claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"
    sent = []
    for i, model in enumerate([sonnet, sonnet, haiku, sonnet, haiku]):
        body = harness.messages_body("q%d" % i, model=model,
                                     mock={"usage": {"input_tokens": 100 * (i + 1),
                                                     "output_tokens": 10 * (i + 1)}})
        status, _, raw = gateway.post_messages(body, key=t.api_key)
        assert status == 200, raw
        sent.append((model, 100 * (i + 1), 10 * (i + 1)))
    rows = gateway.wait_usage({"key_id": t.key["id"]}, count=5)
    kid = t.key["id"]

    only_haiku = gateway.admin_ok("GET", "/admin/usage?key_id=%d&model=%s" % (kid, haiku))["data"]
    assert sorted(r["input_tokens"] for r in only_haiku) == [300, 500]
    # keyset pages: two rows, then the three before them
    page1 = gateway.admin_ok("GET", "/admin/usage?key_id=%d&limit=2" % kid)["data"]
    page2 = gateway.admin_ok("GET", "/admin/usage?key_id=%d&before_id=%d"
                             % (kid, page1[-1]["id"]))["data"]
    assert [r["id"] for r in page1 + page2] == [r["id"] for r in rows]
    assert len(page2) == 3
    # time range: nothing before the rows, all of them up to now
    first = min(r["created_at"] for r in rows)
    assert gateway.admin_ok("GET", "/admin/usage?key_id=%d&to=%d" % (kid, first))["data"] == []
    assert len(gateway.admin_ok("GET", "/admin/usage?key_id=%d&from=%d&to=%d"
                                % (kid, first, int(time.time()) + 1))["data"]) == 5

    by_model = gateway.admin_ok("GET", "/admin/usage/summary?by=model&key_id=%d" % kid)
    assert by_model["by"] == "model"
    sums = {r["model"]: r for r in by_model["data"]}
    assert set(sums) == {sonnet, haiku}
    for model in (sonnet, haiku):
        mine = [r for r in rows if r["model"] == model]
        assert sums[model]["requests"] == len(mine)
        assert sums[model]["input_tokens"] == sum(r["input_tokens"] for r in mine)
        assert sums[model]["output_tokens"] == sum(r["output_tokens"] for r in mine)
        assert sums[model]["actual_cost_nanousd"] == sum(r["actual_cost_nanousd"] for r in mine)
    by_day = gateway.admin_ok("GET", "/admin/usage/summary?by=day&key_id=%d" % kid)["data"]
    assert len(by_day) == 1
    assert by_day[0]["date"] == time.strftime("%Y-%m-%d", time.gmtime(first))
    assert by_day[0]["day"] == first - first % 86400
    assert by_day[0]["requests"] == 5
    assert by_day[0]["total_cost_nanousd"] == sum(r["total_cost_nanousd"] for r in rows)
    by_key = gateway.admin_ok("GET", "/admin/usage/summary?by=key&user_id=%d"
                              % t.user["id"])["data"]
    assert [(r["key"], r["requests"]) for r in by_key] == [(kid, 5)]
    for query in ("by=week", "", "by=model&from=yesterday", "by=model&model="):
        status, body = gateway.admin("GET", "/admin/usage/summary?" + query)
        assert status == 400, (query, body)
    status, _ = gateway.admin("POST", "/admin/usage/summary", {})
    assert status == 405


# ---- the price table ----

def test_prices_in_service(gateway):
    """GET .../prices: the table the gateway bills by, every price exact in
    USD per token (cache prices the file leaves out at their defaults), the
    long-context tiers, the fallback rules; read-only."""
    out = gateway.admin_ok("GET", "/admin/prices")
    assert out["file"] == str(gateway.httpd.prices)
    assert out["count"] == len(out["data"]) == 4 and out["skipped"] == 0
    assert out["fallbacks"] == []
    models = {m["model"]: m for m in out["data"]}
    assert [m["model"] for m in out["data"]] == sorted(models)
    assert models["claude-sonnet-4-20250514"] == {
        "model": "claude-sonnet-4-20250514", "input_cost_per_token": "0.000003",
        "output_cost_per_token": "0.000015", "cache_creation_input_token_cost": "0.00000375",
        "cache_creation_input_token_cost_above_1hr": "0.000006",
        "cache_read_input_token_cost": "0.0000003", "long_context": [],
        "web_search_cost_per_search": "0.01"}
    assert models["claude-3-5-haiku-20241022"]["web_search_cost_per_search"] is None
    assert models["claude-sonnet-4-5-20250929"]["long_context"] == [{
        "above_tokens": 200000, "input_cost_per_token": "0.000006",
        "output_cost_per_token": "0.0000225", "cache_creation_input_token_cost": "0.0000075",
        "cache_creation_input_token_cost_above_1hr": "0.000012",
        "cache_read_input_token_cost": "0.0000006"}]
    for method in ("POST", "PATCH"):
        status, _ = gateway.admin(method, "/admin/prices", {})
        assert status == 405
    status, _ = gateway.admin("GET", "/admin/prices/1")
    assert status == 404
    status, body = gateway.admin("GET", "/admin/prices", token="wrong-token-" + "x" * 20)
    assert status == 401
