"""Installing the Apache way: `make install` stays inside DESTDIR and puts
every file where Debian's httpd looks for it; `a2enmod sub2api` enables the
module with the modules it needs; `apachectl -t` accepts the installed
module, a gateway site and httpd.conf.sample (with the shipped Anthropic
price table and its fallback rules), and names the directive of a bad
value. Debian's tools work on a copy of /etc/apache2 (APACHE_CONFDIR):
the system's configuration is never touched."""

import os
import re
import shutil
import subprocess
import types
from pathlib import Path

import pytest

import harness

REPO = harness.REPO
SAMPLE = REPO / "httpd.conf.sample"
SHIPPED_PRICES = REPO / "prices" / "anthropic.json"
DEBIAN_TOOLS = ("a2enmod", "a2dismod", "a2ensite", "a2enconf", "apache2ctl")
# what `a2enmod sub2api` must enable: the module and its "# Depends:"
ENABLED = ("sub2api", "proxy", "proxy_http", "proxy_balancer", "slotmem_shm", "dbd")


def apxs(var):
    tool = shutil.which("apxs") or shutil.which("apxs2") or "/usr/bin/apxs"
    return subprocess.run([tool, "-q", var], capture_output=True, text=True,
                          check=True).stdout.strip()


def run(cmd, env=None, timeout=300):
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                         stdin=subprocess.DEVNULL, cwd="/")
    res.output = res.stdout + res.stderr
    return res


@pytest.fixture(scope="module")
def installed():
    """`make install DESTDIR=... PREFIX=/usr` of the module under test, run as
    nobody when we are root, so that a write outside DESTDIR fails it."""
    module = harness.module_path()
    if not module.exists():
        pytest.fail("module %s not found: build it with make or set S2A_MODULE" % module,
                    pytrace=False)
    top = harness.new_root("s2a-install-")
    dest = harness.make_dir(top / "root", 0o755, "nobody")
    # the module is taken as built (-o): installing never compiles
    cmd = ["make", "-s", "-C", str(REPO), "-o", str(module), "install", "MODULE=%s" % module,
           "DESTDIR=%s" % dest, "PREFIX=/usr"]
    if harness.is_root():
        cmd = ["runuser", "-u", "nobody", "--"] + cmd
    yield types.SimpleNamespace(root=dest, module=module, result=run(cmd),
                                libexecdir=apxs("LIBEXECDIR"), sysconfdir=apxs("SYSCONFDIR"))
    shutil.rmtree(top, ignore_errors=True)


def test_install_stays_inside_destdir(installed):
    """Every file lands under DESTDIR where Debian's httpd and a2enmod look
    for it, with usable modes, and nothing else is written."""
    res = installed.result
    assert res.returncode == 0, res.output
    dest = installed.root
    libexec = installed.libexecdir.lstrip("/")
    mods = installed.sysconfdir.lstrip("/") + "/mods-available"
    expected = {libexec + "/mod_sub2api.so", "usr/bin/sub2apictl",
                mods + "/sub2api.load", mods + "/sub2api.conf",
                "usr/share/doc/sub2api/admin-api.md", "usr/share/doc/sub2api/directives.md",
                "usr/share/doc/sub2api/httpd.conf.sample",
                "usr/share/sub2api/prices/anthropic.json"}
    found = {str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir()}
    assert found == expected
    module = dest / libexec / "mod_sub2api.so"
    assert module.read_bytes() == installed.module.read_bytes()
    assert module.stat().st_mode & 0o777 == 0o644
    assert (dest / "usr/bin/sub2apictl").stat().st_mode & 0o777 == 0o755
    for name in ("sub2api.load", "sub2api.conf"):
        assert (dest / mods / name).read_text() == (REPO / "debian" / name).read_text()
    prices = dest / "usr/share/sub2api/prices/anthropic.json"
    assert prices.read_bytes() == SHIPPED_PRICES.read_bytes()
    assert prices.stat().st_mode & 0o777 == 0o644
    # the load file names the module where it was installed
    assert "LoadModule sub2api_module %s/mod_sub2api.so" % installed.libexecdir in \
        (dest / mods / "sub2api.load").read_text()


def test_plain_install_goes_to_the_system_directories():
    """Without DESTDIR, `make install` writes where apxs installs modules and
    where a2enmod looks (checked with make -n: nothing is installed)."""
    module = harness.module_path()
    res = run(["make", "-n", "-C", str(REPO), "-o", str(module), "install",
               "MODULE=%s" % module])
    assert res.returncode == 0, res.output
    assert re.search(r"apxs2? -i -S LIBEXECDIR=%s -n sub2api " % re.escape(apxs("LIBEXECDIR")),
                     res.stdout), res.stdout
    assert " /usr/local/bin/sub2apictl" in res.stdout
    assert "-t %s/mods-available" % apxs("SYSCONFDIR") in res.stdout
    assert "-t /usr/local/share/sub2api/prices prices/anthropic.json" in res.stdout


@pytest.fixture
def debian(installed):
    """A copy of /etc/apache2 as Debian ships it (no proxy module, no
    sub2api enabled), with its run, lock and log directories in a temp dir and
    the installed sub2api.load/conf, the load file naming the installed
    module. run() calls Debian's tools on the copy."""
    assert installed.result.returncode == 0, installed.result.output
    missing = [t for t in DEBIAN_TOOLS if not shutil.which(t)]
    if missing or not Path("/etc/apache2/apache2.conf").exists():
        pytest.fail("Debian's apache2 package is needed (%s missing): tests/install-deps"
                    % ", ".join(missing or ["/etc/apache2"]), pytrace=False)
    top = harness.new_root("s2a-debian-")
    conf = top / "apache2"
    shutil.copytree("/etc/apache2", conf, symlinks=True)
    for link in (conf / "mods-enabled").iterdir():
        if link.name.split(".")[0] in ENABLED:
            link.unlink()
    dirs = {name: harness.make_dir(top / name) for name in ("run", "lock", "log", "state")}
    harness.make_dir(dirs["run"] / "socks", 0o755, harness.HTTPD_USER)
    envvars = (conf / "envvars").read_text()
    for name in ("run", "lock", "log"):
        envvars = envvars.replace("/var/%s/apache2$SUFFIX" % name, str(dirs[name]))
    (conf / "envvars").write_text(envvars)
    mods = installed.root / installed.sysconfdir.lstrip("/") / "mods-available"
    shutil.copy(mods / "sub2api.conf", conf / "mods-available")
    load = (mods / "sub2api.load").read_text().replace(
        installed.libexecdir, str(installed.root) + installed.libexecdir)
    (conf / "mods-available" / "sub2api.load").write_text(load)
    env = dict(os.environ, APACHE_CONFDIR=str(conf), APACHE_STATE_DIRECTORY=str(dirs["state"]),
               **harness.sanitizer_env(installed.module))
    yield types.SimpleNamespace(conf=conf, top=top, run=lambda *cmd: run(list(cmd), env=env))
    shutil.rmtree(top, ignore_errors=True)


def enabled(debian):
    """Names in mods-enabled that are relative links to their mods-available file."""
    return {link.name for link in (debian.conf / "mods-enabled").iterdir()
            if os.readlink(link) == "../mods-available/" + link.name}


def test_a2enmod_enables_sub2api_with_what_it_needs(debian):
    """a2enmod follows the load file's "# Depends:" line; the server then
    starts with the module loaded (configtest and -M); a2dismod takes only
    sub2api away."""
    res = debian.run("a2enmod", "sub2api")
    assert res.returncode == 0, res.output
    links = enabled(debian)
    for name in ENABLED:
        assert name + ".load" in links, (name, sorted(links))
    assert "sub2api.conf" in links
    res = debian.run("apache2ctl", "configtest")
    assert res.returncode == 0 and "Syntax OK" in res.output, res.output
    res = debian.run("apache2ctl", "-M")
    assert res.returncode == 0 and "sub2api_module (shared)" in res.stdout, res.output

    res = debian.run("a2dismod", "-q", "sub2api")
    assert res.returncode == 0, res.output
    links = enabled(debian)
    assert "sub2api.load" not in links and "sub2api.conf" not in links
    assert "proxy_balancer.load" in links
    res = debian.run("apache2ctl", "configtest")
    assert res.returncode == 0 and "Syntax OK" in res.output, res.output


def sample_gateway_site(top):
    """The first gateway virtual host of httpd.conf.sample as a Debian site,
    its paths in top, with the price table and admin token file it names."""
    text = SAMPLE.read_text()
    start = text.index("<VirtualHost *:80>\n    ServerName team-a.example.com")
    vhost = text[start:text.index("</VirtualHost>", start) + len("</VirtualHost>")]
    etc = harness.make_dir(top / "etc")
    shutil.copy(SHIPPED_PRICES, harness.make_dir(harness.make_dir(top / "share") / "prices"))
    (etc / "team-a-admin.conf").write_text('Sub2apiAdminToken "%s"\n' % ("t" * 32))
    defines = "".join('Define %s "%s"\n' % (name, harness.make_dir(top / sub))
                      for name, sub in (("S2A_ETC", "etc"), ("S2A_DATA", "data"),
                                        ("S2A_LOGS", "logs"), ("S2A_SHARE", "share")))
    return defines + vhost + "\n"


def test_gateway_site_passes_configtest(debian):
    """A site holding the sample's gateway, with sub2api and ssl enabled
    through a2enmod, is accepted and served as its own virtual host."""
    res = debian.run("a2enmod", "-q", "sub2api", "ssl")
    assert res.returncode == 0, res.output
    (debian.conf / "sites-available" / "gateway.conf").write_text(
        sample_gateway_site(debian.top))
    res = debian.run("a2ensite", "-q", "gateway")
    assert res.returncode == 0, res.output
    res = debian.run("apache2ctl", "configtest")
    assert res.returncode == 0 and "Syntax OK" in res.output, res.output
    res = debian.run("apache2ctl", "-t", "-D", "DUMP_VHOSTS")
    assert re.search(r"port 80 namevhost team-a\.example\.com \(.*gateway\.conf:\d+\)",
                     res.stdout), res.output


def test_bad_value_in_debian_layout_names_the_directive(debian):
    """A bad value in a conf-enabled file fails configtest with the file, the
    line and the directive."""
    res = debian.run("a2enmod", "-q", "sub2api")
    assert res.returncode == 0, res.output
    (debian.conf / "conf-available" / "sub2api-local.conf").write_text(
        "# local settings\nSub2apiSlotWait -3\n")
    res = debian.run("a2enconf", "-q", "sub2api-local")
    assert res.returncode == 0, res.output
    res = debian.run("apache2ctl", "configtest")
    assert res.returncode != 0
    assert "line 2 of %s/conf-enabled/sub2api-local.conf" % debian.conf in res.output
    assert "Sub2apiSlotWait: '-3' is not a number of seconds" in res.output


def test_sample_config_passes_configtest():
    """httpd.conf.sample, with only its six path Defines changed, is a valid
    configuration with both gateways; the first bills by the shipped price
    table, whose models its fallback rules name."""
    module = harness.module_path()
    top = harness.new_root("s2a-sample-")
    try:
        modules = harness.make_dir(top / "modules")
        for so in Path(harness.APACHE_MODULES).glob("*.so"):
            (modules / so.name).symlink_to(so)
        (modules / "mod_sub2api.so").symlink_to(module)
        paths = {"S2A_MODULES": modules}
        for name in ("S2A_ETC", "S2A_DATA", "S2A_LOGS", "S2A_RUN", "S2A_SHARE"):
            paths[name] = harness.make_dir(top / name.lower())
        shutil.copy(harness.HERE / "prices.json", paths["S2A_ETC"] / "prices-partners.json")
        shutil.copy(SHIPPED_PRICES, harness.make_dir(paths["S2A_SHARE"] / "prices"))
        text = SAMPLE.read_text()
        for name, path in paths.items():
            text, n = re.subn(r'(?m)^Define %s\s+"[^"]*"$' % name,
                              'Define %s "%s"' % (name, path), text)
            assert n == 1, "httpd.conf.sample has no Define %s line" % name
        conf = top / "httpd.conf"
        conf.write_text(text)
        env = dict(os.environ, **harness.sanitizer_env(module))
        res = run([harness.APACHE2, "-f", str(conf), "-t"], env=env)
        assert res.returncode == 0 and "Syntax OK" in res.output, res.output
        res = run([harness.APACHE2, "-f", str(conf), "-t", "-D", "DUMP_VHOSTS"], env=env)
        for host in ("team-a.example.com", "partners.example.com"):
            assert "namevhost %s" % host in res.stdout, res.output
    finally:
        shutil.rmtree(top, ignore_errors=True)
