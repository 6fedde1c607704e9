"""balancer-manager, httpd's own page for a balancer's members: a member
an operator disables, stops or drains there takes the accounts on it out
of the choice, and they serve again once it is back."""
import re
import urllib.parse

import pytest

import harness
from harness import messages_body


def set_member(gw, member, flag, on):
    """Sets one status flag of a member of balancer://anthropic through
    balancer-manager's own form, as a browser would post it."""
    page = gw.base_url + "/balancer-manager"
    status, _, raw = harness.http_request(gw.port, "GET", "/balancer-manager",
                                          headers={"Referer": page})
    assert status == 200, raw
    nonce = re.search(rb"nonce=([0-9a-f-]+)", raw).group(1).decode()
    form = urllib.parse.urlencode({"b": "anthropic", "w": member, "nonce": nonce,
                                   "w_status_" + flag: "1" if on else "0"})
    status, _, raw = harness.http_request(
        gw.port, "POST", "/balancer-manager", body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Referer": page})
    assert status == 200, raw


@pytest.mark.parametrize("flag", ["D", "S", "N"])  # disabled, stopped, draining
def test_a_member_taken_out_takes_its_accounts_out(gateway, flag):
    gw = gateway
    first, second = gw.mocks[0].url, gw.mocks[1].url
    t = gw.new_tenant(accounts=0)
    on_first = gw.create_account([t.group["id"]], endpoint=first)
    on_second = gw.create_account([t.group["id"]], endpoint=second)
    set_member(gw, first, flag, True)
    try:
        gw.mock_clear()
        # each a conversation of its own: none is bound to an account
        for i in range(6):
            status, _, raw = gw.post_messages(messages_body("out %d" % i), key=t.api_key)
            assert status == 200, raw
        assert gw.mock_requests(0) == []
        assert len(gw.mock_requests(1)) == 6
    finally:
        set_member(gw, first, flag, False)
    # back: the account on it serves again (the one used longest ago goes first)
    gw.mock_clear()
    for i in range(4):
        status, _, raw = gw.post_messages(messages_body("back %d" % i), key=t.api_key)
        assert status == 200, raw
    sent = [r["headers"]["x-api-key"] for r in gw.mock_requests(0)]
    assert gw.credentials[on_first["id"]] in sent
    assert gw.credentials[on_second["id"]] not in sent
