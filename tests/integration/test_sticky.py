"""Sticky sessions: a conversation stays on one account (its prompt cache
lives there) until that account cannot serve it."""

import json

from harness import messages_body

CC_SYSTEM = [{"type": "text", "text": "You are Claude Code, a coding assistant.",
              "cache_control": {"type": "ephemeral"}},
             {"type": "text", "text": "Environment: linux"}]


def sent_key(gateway):
    return gateway.mock_requests()[-1]["headers"]["x-api-key"]


def test_session_header_keeps_a_conversation_on_one_account(gateway):
    t = gateway.new_tenant(accounts=3)
    used = {"a": set(), "b": set(), None: []}
    for i in range(4):
        for session in ("a", "b", None):
            headers = {"x-claude-code-session-id": session} if session else {}
            # different first messages: without a header each is a new conversation
            status, _, _ = gateway.post_messages(messages_body("q%d%s" % (i, session)),
                                                 key=t.api_key, headers=headers)
            assert status == 200
            if session:
                used[session].add(sent_key(gateway))
            else:
                used[None].append(sent_key(gateway))
    assert len(used["a"]) == 1 and len(used["b"]) == 1
    # new conversations go to the least recently used account: a, b and the
    # others never share one
    assert used["a"] != used["b"]
    assert not (used["a"] | used["b"]) & set(used[None])


def test_user_id_session_and_cached_system_bind_too(gateway):
    t = gateway.new_tenant(accounts=3)
    meta = {"user_id": json.dumps({"device_id": "d", "account_uuid": "a",
                                   "session_id": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"})}
    keys = set()
    for turn in range(4):
        body = messages_body("turn %d" % turn, metadata=meta)
        assert gateway.post_messages(body, key=t.api_key)[0] == 200
        keys.add(sent_key(gateway))
        gateway.post_messages(messages_body("noise %d" % turn), key=t.api_key)
    assert len(keys) == 1
    keys = set()
    for turn in range(4):
        body = messages_body("question %d" % turn, system=CC_SYSTEM)
        assert gateway.post_messages(body, key=t.api_key)[0] == 200
        keys.add(sent_key(gateway))
        gateway.post_messages(messages_body("noise %d" % turn), key=t.api_key)
    assert len(keys) == 1


def test_conversation_moves_when_its_account_fails_and_stays_moved(gateway):
    t = gateway.new_tenant(accounts=3)
    gateway.expect_error(r"S2A0207")
    headers = {"x-claude-code-session-id": "move-me"}
    assert gateway.post_messages(messages_body(), key=t.api_key, headers=headers)[0] == 200
    bound = sent_key(gateway)
    gateway.mock_clear()
    status, _, _ = gateway.post_messages(messages_body(mock={"status_for": {bound: 529}}),
                                         key=t.api_key, headers=headers)
    assert status == 200
    moved = sent_key(gateway)
    assert moved != bound
    for _ in range(3):
        gateway.post_messages(messages_body(), key=t.api_key)  # other traffic
        assert gateway.post_messages(messages_body(), key=t.api_key,
                                     headers=headers)[0] == 200
        assert sent_key(gateway) == moved


def test_conversation_moves_when_its_account_stops_serving_the_model(gateway):
    t = gateway.new_tenant(accounts=2)
    headers = {"x-claude-code-session-id": "model-change"}
    gateway.post_messages(messages_body(), key=t.api_key, headers=headers)
    bound = sent_key(gateway)
    idx = t.credentials.index(bound)
    gateway.admin_ok("PATCH", "/admin/accounts/%d" % t.accounts[idx]["id"],
                     {"model_mapping": {"claude-3-5-haiku-20241022": "claude-3-5-haiku-20241022"}})
    assert gateway.post_messages(messages_body(), key=t.api_key, headers=headers)[0] == 200
    assert sent_key(gateway) == t.credentials[1 - idx]


def test_upstream_404_passes_through_without_switching(gateway):
    t = gateway.new_tenant(accounts=2)
    status, _, raw = gateway.post_messages(messages_body(mock={"status": 404}), key=t.api_key)
    assert status == 404
    assert json.loads(raw)["error"]["type"] == "not_found_error"
    assert len(gateway.mock_requests()) == 1
