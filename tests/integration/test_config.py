"""`apachectl configtest` refuses bad values of the store, OAuth and pricing
directives (a fallback rule naming a model the table lacks) with a message
naming the directive, and accepts good ones."""

import pytest

import harness


def configured(tmp_path, extra):
    return harness.Httpd(harness.make_dir(tmp_path / "h"), ["http://127.0.0.1:9"],
                         dbd_params=str(tmp_path / "s2a.sqlite"), admin_token="t" * 32,
                         extra_conf=extra)


@pytest.mark.parametrize("line, message", [
    ("Sub2apiStore http://127.0.0.1:6379", "Sub2apiStore: shm, redis://"),
    ("Sub2apiStore rediss://h:6380/0?ca=/nonexistent.pem",
     "Sub2apiStore: cannot read the CA file /nonexistent.pem"),
    ("Sub2apiStore redis://h:99999/0", "port must be a number"),
    ("Sub2apiStore redis://:s3cret-pw@h:x/0", "Sub2apiStore"),
    ("Sub2apiOAuthTokenURL http://auth.example.com/v1/oauth/token",
     "https:// is required"),
    ("Sub2apiOAuthCAFile /nonexistent.pem", "Sub2apiOAuthCAFile: cannot read"),
    ("Sub2apiOAuthTokenURL not a url", "Sub2apiOAuthTokenURL"),
    ("Sub2apiOAuthRefreshInterval 0", "Sub2apiOAuthRefreshInterval must be between"),
    ("Sub2apiUnpricedModel claude-nonexistent-1", "Sub2apiUnpricedModel claude-nonexistent-1:"
     " the virtual host's price table has no such model"),
    ("Sub2apiPriceFallback \"claude-opus-*\" claude-opus-9",
     "Sub2apiPriceFallback \"claude-opus-*\" claude-opus-9: the virtual host's price table has"
     " no such model"),
    ("Sub2apiPriceFallback claude-opus-*", "Sub2apiPriceFallback takes two arguments"),
    ("Sub2apiPriceFallback \"claude-*\" claude-3-5-haiku-20241022\n"
     "Sub2apiUnpricedModel claude-nonexistent-2",
     "Sub2apiUnpricedModel claude-nonexistent-2: the virtual host's price table has no such"
     " model"),
    ("<Proxy \"balancer://anthropic\">\nProxySet stickysession=ROUTEID\n</Proxy>",
     "balancer://anthropic: stickysession would send requests past the gateway"),
])
def test_bad_values_are_refused(tmp_path, line, message):
    httpd = configured(tmp_path, line)
    httpd.render()
    with pytest.raises(harness.HarnessError) as exc:
        httpd.check_config()
    assert message in str(exc.value)
    assert "s3cret-pw" not in str(exc.value)


def test_good_values_pass(tmp_path):
    httpd = configured(tmp_path, "Sub2apiStore redis://gw:pw@127.0.0.1:6380/3\n"
                                 "Sub2apiOAuthRefreshInterval 60\nSub2apiStore shm\n"
                                 "Sub2apiUnpricedModel claude-sonnet-4-20250514\n"
                                 "Sub2apiUnpricedModel reject\n"
                                 "Sub2apiPriceFallback \"claude-opus-*\" claude-opus-4-20250514\n"
                                 "Sub2apiPriceFallback * claude-3-5-haiku-20241022\n")
    httpd.render()
    httpd.check_config()
