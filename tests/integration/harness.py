"""Real servers for the integration tests: mock upstreams, PostgreSQL and httpd.

Everything runs from a fresh directory per test run with generated configuration;
nothing here builds the module (it is taken from $S2A_MODULE or
build/mod_sub2api.so).
"""

import base64
import concurrent.futures
import copy
import ctypes
import http.client
import itertools
import json
import os
import pwd
import grp
import hashlib
import re
import secrets
import select
import shutil
import signal
import socket
import ssl
import sqlite3
import subprocess
import sys
import tempfile
import time
import types
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
APACHE2 = os.environ.get("S2A_APACHE2", "/usr/sbin/apache2")
APACHE_MODULES = os.environ.get("S2A_APACHE_MODULES", "/usr/lib/apache2/modules")
PG_BIN = os.environ.get("S2A_PG_BIN", "/usr/lib/postgresql/15/bin")
HTTPD_USER = "www-data"
DEFAULT_MODEL = "claude-sonnet-4-20250514"
ANTHROPIC_VERSION = "2023-06-01"

# Lines that fail a test unless it declared them expected.
LEVEL_RE = re.compile(r"^\[[^\]]*\] \[[^\]:]*:(emerg|alert|crit|error)\]")
CRASH_RE = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|exit signal|"
                      r"nasty error|Segmentation fault")
RESUMING_RE = re.compile(r"resuming normal operations")
STOP_RACE_RE = re.compile(r"\(9\)Bad file descriptor: AH00468: error closing socket")


def _lines_at(text, offset):
    """(byte offset in the log, line) for each line of text read from offset."""
    for line in text.splitlines(keepends=True):
        yield offset, line.rstrip("\n")
        offset += len(line.encode(errors="replace"))


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


class HarnessError(RuntimeError):
    pass


def _die_with_parent():
    """Child side of Popen: get SIGTERM when the test process dies, so that a
    killed test run leaves no server behind."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def module_path():
    return Path(os.environ.get("S2A_MODULE") or REPO / "build" / "mod_sub2api.so")


def is_root():
    return os.geteuid() == 0


def within_one_minute(seconds):
    """Waits until `seconds` are left of the clock minute: per-minute limits
    count in clock minutes, and what a test does must fall in one."""
    if 60 - time.time() % 60 < seconds:
        time.sleep(60 - time.time() % 60 + 0.2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def give_to(path, owner):
    """chown path to owner and its primary group (only possible as root)."""
    if is_root():
        shutil.chown(path, owner, grp.getgrgid(pwd.getpwnam(owner).pw_gid).gr_name)


def make_dir(path, mode=0o755, owner=None):
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if owner:
        give_to(path, owner)
    return path


def new_root(prefix):
    """A fresh directory under the system temp dir that httpd's user can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    return path


def tail(path, limit=4000):
    try:
        return Path(path).read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def lower_headers(message):
    out = {}
    for name, value in message.items():
        key = name.lower()
        out[key] = out[key] + ", " + value if key in out else value
    return out


_addresses = itertools.count(2)


def new_client_address():
    """A loopback address of its own (127.0.0.2 onwards) for a test whose
    client the gateway will remember, its failed authentications say."""
    n = next(_addresses)
    return "127.0.%d.%d" % (n // 250, n % 250 + 2)


def http_request(port, method, path, body=None, headers=None, timeout=30, source=None,
                 tls=False):
    """One request on a fresh connection, from `source` (an address) when
    given, over TLS (its certificate not checked) with tls: (status,
    lowercased headers, raw body)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    if tls:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                           context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                          source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, lower_headers(resp.headers), resp.read()
    finally:
        conn.close()


SDK_DIR = REPO / "tests" / "sdk"


def sdk_packages(package):
    """tests/sdk's pinned packages, installed with npm ci when `package` (a
    path under node_modules) is missing: None, or why they cannot be had."""
    if (SDK_DIR / "node_modules" / package).is_dir():
        return None
    npm = shutil.which("npm")
    res = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SDK_DIR,
                         capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL) if npm else None
    if res is None or res.returncode != 0:
        return "tests/sdk: npm ci failed: %s" % (res.stderr[-2000:] if res else "npm not found")
    return None


def make_certificate(directory, name):
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, by
    openssl, readable by httpd's user: (certificate, key) paths."""
    cert, key = Path(directory) / (name + ".pem"), Path(directory) / (name + "-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    os.chmod(cert, 0o644)
    return cert, key


def parse_json(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def parse_sse(raw):
    """Split an SSE body into (event name, parsed data) pairs."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    events = []
    for block in re.split(r"\r?\n\r?\n", raw):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if name is None and not data:
            continue
        text = "\n".join(data)
        events.append((name, parse_json(text) if text else None))
    return events


def sse_text(events):
    """Concatenated text deltas of parsed SSE events."""
    return "".join(d["delta"].get("text", "") for n, d in events
                   if n == "content_block_delta" and isinstance(d, dict))


def body_of_size(size, **kwargs):
    """messages_body(**kwargs) padded with an extra field to exactly `size`
    bytes as sent (the gateway estimates input tokens from the size)."""
    body = messages_body(**kwargs)
    body["padding"] = ""
    body["padding"] = "p" * (size - len(json.dumps(body)))
    assert len(json.dumps(body)) == size
    return body


def messages_body(text="Hello", model=DEFAULT_MODEL, stream=False, mock=None, max_tokens=64,
                  **extra):
    """A Messages API request body; `mock` options ride in the user text."""
    if mock is not None:
        text = "mock:" + json.dumps(mock)
    body = {"model": model, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    body.update(extra)
    return body


def sanitizer_env(module):
    """LD_PRELOAD the sanitizer runtimes a module was linked with (httpd itself is not)."""
    try:
        out = subprocess.run(["ldd", str(module)], capture_output=True, text=True,
                             check=False).stdout
    except OSError:
        return {}
    libs = [m.group(1) for m in re.finditer(r"lib(?:asan|ubsan)\.so[.\d]* => (\S+)", out)]
    if not libs:
        return {}
    return {
        "LD_PRELOAD": " ".join(libs),
        "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:use_sigaltstack=0",
        "UBSAN_OPTIONS": "print_stacktrace=1",
    }


def aws_test_key(name):
    """An AWS access key the mock upstream knows, made from `name`:
    (access key id, secret access key). The mock derives the secret from the
    id as this does."""
    digest = hashlib.sha256(("akid:" + name).encode()).digest()
    access_key_id = "AKIA" + base64.b32encode(digest).decode()[:16]
    secret = hashlib.sha256(("mock-aws-secret:" + access_key_id).encode()).digest()
    return access_key_id, base64.b64encode(secret).decode()[:40]


def bedrock_api_key(name):
    """A Bedrock API key (a bearer token) the mock upstream takes, made from `name`."""
    secret = hashlib.sha256(name.encode()).hexdigest()[:32]
    return "ABSK" + base64.b64encode(("BedrockAPIKey-%s:%s" % (name, secret)).encode()).decode()


class MockUpstream:
    """tests/integration/mock_upstream.py as a subprocess on a free port."""

    def __init__(self, log_path, args=(), tls=None):
        """args: more command-line options of mock_upstream.py; tls: (certificate,
        key) files to serve HTTPS with."""
        self.log_path = Path(log_path)
        self.args = list(args) + (["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
                                  if tls else [])
        self.tls = bool(tls)
        self.proc = None
        self.port = None

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def start(self, timeout=10):
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "mock_upstream.py"), "--port", "0"] + self.args,
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent)
        finally:
            log.close()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise HarnessError("mock upstream did not start: %s" % tail(self.log_path))
        self.port = int(line.split()[1])
        status, _, _ = http_request(self.port, "GET", "/_mock/health", timeout=5, tls=self.tls)
        if status != 200:
            raise HarnessError("mock upstream health check answered %d" % status)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def requests(self):
        status, _, raw = http_request(self.port, "GET", "/_mock/requests", tls=self.tls)
        assert status == 200, raw
        return json.loads(raw)

    def clear(self):
        status, _, raw = http_request(self.port, "DELETE", "/_mock/requests", tls=self.tls)
        assert status == 200, raw

    def stats(self):
        status, _, raw = http_request(self.port, "GET", "/_mock/stats", tls=self.tls)
        assert status == 200, raw
        return json.loads(raw)

    def token_calls(self):
        status, _, raw = http_request(self.port, "GET", "/_mock/token_calls", tls=self.tls)
        assert status == 200, raw
        return json.loads(raw)

    def service_account(self, **opts):
        """A new Vertex service account: its key file as Google issues it (a
        dict). opts: project_id, expires_in (seconds its access tokens last)."""
        status, _, raw = http_request(self.port, "POST", "/_mock/service_accounts", opts,
                                      tls=self.tls)
        assert status == 200, raw
        return json.loads(raw)


class Postgres:
    """A throw-away PostgreSQL cluster owned by the postgres OS user."""

    def __init__(self, base_dir, dbname="s2a"):
        self.dir = Path(base_dir)
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.dbname = dbname
        self.port = None
        self.user = "postgres"
        self.started = False

    @staticmethod
    def available():
        return Path(PG_BIN, "initdb").exists() and Path(PG_BIN, "pg_ctl").exists()

    def _run(self, *args, timeout=120):
        cmd = list(args)
        if is_root():
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        res = subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise HarnessError("%s failed (%d):\n%s%s\n%s" % (
                " ".join(cmd), res.returncode, res.stdout, res.stderr, tail(self.log)))
        return res.stdout

    @property
    def dbd_params(self):
        return "host=127.0.0.1 port=%d dbname=%s user=%s" % (self.port, self.dbname, self.user)

    def start(self):
        if not is_root():
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        make_dir(self.dir, 0o700, "postgres")
        self._run(PG_BIN + "/initdb", "-D", str(self.data), "-A", "trust", "-U", self.user,
                  "-E", "UTF8", "--no-sync")
        self.port = free_port()
        self.resume()
        self._run(PG_BIN + "/createdb", "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", self.user, self.dbname)
        return self

    def resume(self):
        """Start the cluster again after stop(), on the same port with its data."""
        options = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off" % (self.port, self.dir))
        self._run(PG_BIN + "/pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")
        self.started = True

    def psql(self, sql):
        out = self._run(PG_BIN + "/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                        self.user, "-d", self.dbname, "-At", "-F", "\t", "-v",
                        "ON_ERROR_STOP=1", "-c", sql)
        return [tuple(line.split("\t")) for line in out.splitlines()]

    def stop(self):
        if self.started:
            self._run(PG_BIN + "/pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60",
                      "stop")
            self.started = False


class TinyProxy:
    """Debian's tinyproxy, an HTTP forward proxy, on a free loopback port;
    with credentials it asks for them (BasicAuth). Its log names every
    request it carried."""

    def __init__(self, base_dir, credentials=None):
        self.dir = make_dir(base_dir, 0o777)
        self.log = self.dir / "tinyproxy.log"
        self.port = free_port()
        self.credentials = credentials
        self.proc = None

    @staticmethod
    def available():
        return shutil.which("tinyproxy") is not None

    @property
    def url(self):
        """The egress an account names."""
        auth = "%s:%s@" % self.credentials if self.credentials else ""
        return "http://%s127.0.0.1:%d" % (auth, self.port)

    def start(self, timeout=10):
        conf = self.dir / "tinyproxy.conf"
        lines = ["Port %d" % self.port, "Listen 127.0.0.1", "Timeout 60",
                 'LogFile "%s"' % self.log, "LogLevel Connect", "MaxClients 200",
                 "Allow 127.0.0.1"]
        if is_root():
            lines = ["User nobody", "Group nogroup"] + lines
        if self.credentials:
            lines.append("BasicAuth %s %s" % self.credentials)
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(["tinyproxy", "-d", "-c", str(conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise HarnessError("tinyproxy did not start:\n%s" % tail(self.log))

    def carried(self):
        """The request lines of what it carried ("POST http://... HTTP/1.1",
        "CONNECT host:port HTTP/1.1")."""
        text = self.log.read_text() if self.log.exists() else ""
        return re.findall(r"Request \(file descriptor \d+\): (.*)", text)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class Redis:
    """A private redis-server on a free loopback port (kept across restart()).
    It asks for a password, as a shared one would: the gateway logs in as the
    ACL user `gateway`, the harness as the default user. With tls it also
    listens with TLS on a port of its own, for the gateway (rediss://), its
    certificate for 127.0.0.1 made here and trusted through ?ca=."""

    def __init__(self, base_dir, tls=False):
        self.dir = make_dir(base_dir)
        self.log = self.dir / "redis.log"
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.proc = None
        self.password = secrets.token_hex(12)
        self.admin_password = secrets.token_hex(12)
        self.cert, self.key = make_certificate(self.dir, "redis") if tls else (None, None)

    @staticmethod
    def available():
        return shutil.which("redis-server") is not None

    @property
    def url(self):
        if self.tls_port:
            return "rediss://gateway:%s@127.0.0.1:%d/0?ca=%s" % (self.password, self.tls_port,
                                                                 self.cert)
        return "redis://gateway:%s@127.0.0.1:%d/0" % (self.password, self.port)

    def start(self, timeout=10):
        tls = ["--tls-port", str(self.tls_port), "--tls-cert-file", str(self.cert),
               "--tls-key-file", str(self.key), "--tls-ca-cert-file", str(self.cert),
               "--tls-auth-clients", "no"] if self.tls_port else []
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--logfile", str(self.log),
             "--requirepass", self.admin_password,
             "--user", "gateway", "on", ">" + self.password, "~*", "&*", "+@all"] + tls,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise HarnessError("redis-server did not start:\n%s" % tail(self.log))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_seconds=0.0):
        """Stop (all state is lost: no persistence), stay down a while, start again."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def command(self, *args):
        """One command on a fresh connection; the decoded reply."""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        auth = self.admin_password.encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(auth), auth) + out)
            reader = conn.makefile("rb")
            self._reply(reader)
            return self._reply(reader)

    def _reply(self, reader):
        line = reader.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:].decode()
        if kind == b"+":
            return rest
        if kind == b"-":
            raise HarnessError("redis: " + rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = reader.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply(reader) for _ in range(n)]
        raise HarnessError("redis: unexpected reply %r" % line)


class Httpd:
    """httpd with a configuration generated from httpd.conf.in.

    plain=True starts it without the gateway module: a reverse proxy to the
    first upstream, for checking the harness itself.
    """

    def __init__(self, root, upstreams, plain=False, module=None, dbd_driver="",
                 dbd_params="", admin_token="", prices=None, extra_conf="", cred_key_file=None,
                 member_params=""):
        self.root = Path(root)
        self.conf_dir = make_dir(self.root / "conf")
        self.log_dir = make_dir(self.root / "logs")
        self.run_dir = make_dir(self.root / "run", 0o755, HTTPD_USER)
        self.conf = self.conf_dir / "httpd.conf"
        self.error_log = self.log_dir / "error_log"
        self.access_log = self.log_dir / "access_log"
        self.stdio_log = self.log_dir / "httpd.stdio"
        self.upstreams = list(upstreams)
        self.plain = plain
        self.module = Path(module) if module else module_path()
        self.dbd_driver = dbd_driver
        self.dbd_params = dbd_params
        self.admin_token = admin_token
        self.prices = Path(prices) if prices else HERE / "prices.json"
        self.extra_conf = extra_conf
        # parameters of the upstreams' BalancerMember lines (e.g. "ttl=20")
        self.member_params = member_params
        self.port = free_port()
        # a balancer member nothing listens on, for connection failures
        self.dead_upstream = "http://127.0.0.1:%d" % free_port()
        # the key upstream credentials are sealed with in the database
        self.cred_key_file = Path(cred_key_file or self.root / "credential.key")
        if not self.cred_key_file.exists():
            self.cred_key_file.write_text(secrets.token_hex(32) + "\n")
            self.cred_key_file.chmod(0o600)
        self.proc = None
        self.stop_offset = None  # error-log size when stop() began
        self.env = dict(os.environ)
        if not plain:
            self.env.update(sanitizer_env(self.module))

    def render(self):
        if is_root():
            user_group = "User %s\nGroup %s" % (
                HTTPD_USER, grp.getgrgid(pwd.getpwnam(HTTPD_USER).pw_gid).gr_name)
        else:
            user_group = ""
        values = {
            "SERVER_ROOT": self.root,
            "RUN_DIR": self.run_dir,
            "LOG_DIR": self.log_dir,
            "PORT": self.port,
            "USER_GROUP": user_group,
            "MODULES_DIR": APACHE_MODULES,
            "S2A_MODULE": self.module,
            "DEAD_UPSTREAM": self.dead_upstream,
            "CRED_KEY_FILE": self.cred_key_file,
            "DBD_DRIVER": self.dbd_driver or "sqlite3",
            "DBD_PARAMS": self.dbd_params,
            "PRICES": self.prices,
            "ADMIN_TOKEN": self.admin_token,
            "UPSTREAM1": self.upstreams[0],
            "UPSTREAM2": self.upstreams[-1],
            "EXTRA_CONF": self.extra_conf,
            "MEMBER_PARAMS": self.member_params,
        }
        text = (HERE / "httpd.conf.in").read_text()
        text = re.sub(r"@([A-Z0-9_]+)@", lambda m: str(values[m.group(1)]), text)
        self.conf.write_text(text)

    def _args(self):
        args = [APACHE2, "-d", str(self.root), "-f", str(self.conf)]
        if not self.plain:
            args.append("-DS2A_MODULE")
        return args

    def check_config(self):
        res = subprocess.run(self._args() + ["-t"], capture_output=True, text=True,
                             env=self.env, stdin=subprocess.DEVNULL, timeout=60)
        if res.returncode != 0:
            raise HarnessError("httpd configuration check failed:\n%s%s" % (res.stdout,
                                                                           res.stderr))

    def start(self, timeout=30):
        if not self.plain and not self.module.exists():
            raise HarnessError("module %s not found: build it with make or set S2A_MODULE"
                               % self.module)
        self.render()
        self.check_config()
        stdio = open(self.stdio_log, "ab")
        try:
            self.proc = subprocess.Popen(self._args() + ["-DFOREGROUND"], stdout=stdio,
                                         stderr=stdio, stdin=subprocess.DEVNULL, env=self.env,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            stdio.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=30):
        """Wait until a child answers HTTP (not merely until the port accepts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError("httpd exited with %d:\n%s\n%s" % (
                    self.proc.returncode, tail(self.stdio_log), tail(self.error_log)))
            try:
                http_request(self.port, "GET", "/_harness_ready", timeout=2)
                return
            except OSError:
                time.sleep(0.05)
        raise HarnessError("httpd did not answer on port %d within %ss:\n%s" % (
            self.port, timeout, tail(self.error_log)))

    def log_size(self):
        try:
            return self.error_log.stat().st_size
        except FileNotFoundError:
            return 0

    def graceful(self, extra_conf=None, timeout=30, check=True):
        """Graceful restart (SIGUSR1, like -k graceful), optionally with new extra config.
        check=False sends the signal without the configuration check first, as
        `kill -USR1` does."""
        if extra_conf is not None:
            self.extra_conf = extra_conf
        self.render()
        if check:
            self.check_config()
        offset = self.log_size()
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError("httpd exited during graceful restart:\n%s"
                                   % tail(self.error_log))
            with open(self.error_log, "rb") as f:
                f.seek(offset)
                if RESUMING_RE.search(f.read().decode(errors="replace")):
                    self.wait_ready(max(deadline - time.monotonic(), 1))
                    return
            time.sleep(0.05)
        raise HarnessError("graceful restart did not complete:\n%s" % tail(self.error_log))

    def stop(self, timeout=30):
        """Stop like -k graceful-stop (SIGWINCH to the parent; connections still
        open after GracefulShutdownTimeout are cut) and wait for it to exit."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.stop_offset = self.log_size()
        self.proc.send_signal(signal.SIGWINCH)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise HarnessError("httpd did not stop within %ss" % timeout)


class StreamResult(types.SimpleNamespace):
    """status, headers, raw (bytes), chunks [(seconds since send, bytes)], events."""

    @property
    def text(self):
        return sse_text(self.events)

    @property
    def first_chunk_time(self):
        return self.chunks[0][0] if self.chunks else None


class Gateway:
    """The module under test behind httpd, plus the client and admin calls tests need."""

    _names = itertools.count(1)

    def __init__(self, root, db, mocks, extra_conf="", store="shm", peer=None, prices=None,
                 member_params=""):
        """store: "shm", "redis" (a private redis-server) or "redis-tls" (the
        same, reached over TLS). peer: another
        Gateway whose database, Redis, admin token and credential key this
        one shares (a second node). member_params: see Httpd."""
        self.root = make_dir(root, 0o755)
        self.db = db
        self.store = store
        self.mocks = mocks
        self.mock = mocks[0]
        self.peer = peer
        self.admin_token = peer.admin_token if peer else "s2a-admin-" + secrets.token_hex(16)
        self.pg = None
        self.redis = None
        self.store_conf = ""
        self.sqlite_path = None
        self.expected = []
        self.test_offset = 0
        self.credentials = {}
        self.extra_conf = extra_conf
        self.prices = prices
        self.member_params = member_params
        self.httpd = None

    # -- life cycle -------------------------------------------------------

    def start(self):
        if self.peer:
            self.pg, self.redis, self.sqlite_path = (self.peer.pg, self.peer.redis,
                                                     self.peer.sqlite_path)
        elif self.store in ("redis", "redis-tls"):
            self.redis = Redis(self.root / "redis", tls=self.store == "redis-tls").start()
        self.store_conf = "Sub2apiStore %s\n" % self.redis.url if self.redis else ""
        if self.peer and self.pg:
            driver, params = "pgsql", self.pg.dbd_params
        elif self.peer:
            driver, params = "sqlite3", str(self.sqlite_path)
        elif self.db == "pgsql":
            self.pg = Postgres(self.root / "pg").start()
            driver, params = "pgsql", self.pg.dbd_params
        else:
            db_dir = make_dir(self.root / "db", 0o777, HTTPD_USER)
            self.sqlite_path = db_dir / "s2a.sqlite"
            self.sqlite_path.touch()
            give_to(self.sqlite_path, HTTPD_USER)
            driver, params = "sqlite3", str(self.sqlite_path)
        self.httpd = Httpd(self.root / "httpd", [m.url for m in self.mocks],
                           dbd_driver=driver, dbd_params=params, admin_token=self.admin_token,
                           extra_conf=self.store_conf + self.extra_conf, prices=self.prices,
                           member_params=self.member_params,
                           cred_key_file=self.peer.httpd.cred_key_file if self.peer else None)
        try:
            self.httpd.start()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self):
        try:
            if self.httpd:
                self.httpd.stop()
        finally:
            if self.redis and not self.peer:
                self.redis.stop()
            if self.pg and not self.peer:
                self.pg.stop()

    def reload(self, extra_conf=None, check=True):
        """Graceful restart; extra_conf (if given) replaces the extra configuration."""
        if extra_conf is not None:
            self.extra_conf = extra_conf
        self.httpd.graceful(self.store_conf + self.extra_conf, check=check)

    @property
    def port(self):
        return getattr(self, "_port", None) or self.httpd.port

    def child_pids(self):
        """httpd's child processes, as ps sees them now."""
        pid = int((self.httpd.run_dir / "httpd.pid").read_text())
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                             text=True).stdout
        return [int(p) for p in out.split()]

    def virtual_host(self, port, admin_token):
        """This gateway as another virtual host of its httpd: client and
        admin requests go to `port`, the admin API with `admin_token`."""
        view = copy.copy(self)
        view._port = port
        view.admin_token = admin_token
        view.credentials = {}
        return view

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.port

    # -- error log --------------------------------------------------------

    def log_offset(self):
        return self.httpd.log_size()

    def error_log(self, since=0):
        with open(self.httpd.error_log, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")

    def expect_error(self, regex):
        """Declare error-log lines matching regex as expected for the current test."""
        self.expected.append(re.compile(regex))

    def bad_log_lines(self, since=0):
        bad = []
        stopping = self.httpd.stop_offset
        text = self.error_log(since)
        for at, line in _lines_at(text, since):
            if not (LEVEL_RE.search(line) or CRASH_RE.search(line)):
                continue
            if any(p.search(line) for p in self.expected):
                continue
            # a stream still open when GracefulShutdownTimeout ends is cut:
            # httpd 2.4's event MPM closes the sockets of busy workers, and
            # the worker closes its socket again (later httpd checks first)
            if stopping is not None and at >= stopping and STOP_RACE_RE.search(line):
                continue
            bad.append(line)
        return bad

    def begin_test(self):
        self.expected = []
        self.test_offset = self.log_offset()
        for m in self.mocks:
            m.clear()

    def end_test(self):
        """Unexpected error-log lines written since begin_test()."""
        bad = self.bad_log_lines(self.test_offset)
        self.expected = []
        self.test_offset = self.log_offset()
        return bad

    # -- admin API --------------------------------------------------------

    def admin(self, method, path, json=None, token=None, headers=None):
        """(status, parsed JSON or text) of an admin request."""
        hdrs = {"Authorization": "Bearer " + (self.admin_token if token is None else token)}
        if token == "":
            hdrs = {}
        if json is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        status, _, raw = http_request(self.port, method, path, body=json, headers=hdrs)
        return status, parse_json(raw) if raw else None

    def admin_ok(self, method, path, json=None, expect=(200, 201)):
        status, body = self.admin(method, path, json)
        expect = (expect,) if isinstance(expect, int) else expect
        assert status in expect, "%s %s -> %d %r" % (method, path, status, body)
        return body

    @classmethod
    def unique(cls, prefix):
        return "%s-%d-%s" % (prefix, next(cls._names), secrets.token_hex(3))

    def create_user(self, balance_usd="10", status="active", name=None, **fields):
        fields.setdefault("name", name or self.unique("user"))
        fields.setdefault("status", status)
        if "balance_nanousd" not in fields:
            fields["balance_usd"] = balance_usd
        return self.admin_ok("POST", "/admin/users", fields, 201)

    def create_group(self, rate_multiplier="1", name=None, **fields):
        fields.setdefault("name", name or self.unique("group"))
        fields.setdefault("rate_multiplier", rate_multiplier)
        return self.admin_ok("POST", "/admin/groups", fields, 201)

    def create_key(self, user_id, group_id, name=None, **fields):
        fields.update(user_id=user_id, group_id=group_id)
        fields.setdefault("name", name or self.unique("key"))
        return self.admin_ok("POST", "/admin/keys", fields, 201)

    def create_account(self, group_ids, credential=None, endpoint=None, name=None, **fields):
        """POST /admin/accounts; the plain credential is kept in self.credentials[id]."""
        fields.setdefault("name", name or self.unique("account"))
        fields.setdefault("type", "apikey")
        fields.setdefault("credential",
                          credential or "sk-ant-api03-" + secrets.token_hex(24) + "-AA")
        fields.setdefault("endpoint", endpoint or self.mock.url)
        fields["group_ids"] = list(group_ids)
        account = self.admin_ok("POST", "/admin/accounts", fields, 201)
        self.credentials[account["id"]] = fields["credential"]
        return account

    def new_tenant(self, balance_usd="10", rate_multiplier="1", accounts=1, **account_fields):
        """A fresh user, group, key and `accounts` upstream accounts serving that group."""
        user = self.create_user(balance_usd=balance_usd)
        group = self.create_group(rate_multiplier=rate_multiplier)
        key = self.create_key(user["id"], group["id"])
        accts = [self.create_account([group["id"]], **account_fields) for _ in range(accounts)]
        creds = [self.credentials[a["id"]] for a in accts]
        return types.SimpleNamespace(user=user, group=group, key=key, api_key=key["key"],
                                     accounts=accts, account=accts[0] if accts else None,
                                     credentials=creds, credential=creds[0] if creds else None)

    def bedrock_pair(self, session_token=None):
        """A Bedrock access key pair (as the admin API takes it) the mock knows."""
        akid, secret = aws_test_key(self.unique("akid"))
        pair = {"access_key_id": akid, "secret_access_key": secret}
        if session_token:
            pair["session_token"] = session_token
        return pair

    def bedrock_tenant(self, credential=None, accounts=1, **fields):
        """A tenant whose accounts are Bedrock's (region us-east-1, the mock as
        endpoint), each with a key pair of its own (t.pairs) unless
        `credential` is given."""
        t = self.new_tenant(accounts=0)
        t.pairs = [credential or self.bedrock_pair() for _ in range(accounts)]
        for cred in t.pairs:
            self.create_account([t.group["id"]], type="bedrock", region="us-east-1",
                                credential=cred, **fields)
        return self._with_accounts(t)

    def vertex_tenant(self, accounts=1, sa_opts=None, **fields):
        """A tenant whose accounts are Vertex service accounts of the mock
        (region us-east5; t.keys: their key files)."""
        t = self.new_tenant(accounts=0)
        t.keys = [self.mock.service_account(**(sa_opts or {})) for _ in range(accounts)]
        for key in t.keys:
            self.create_account([t.group["id"]], type="vertex", region="us-east5",
                                credential=key, **fields)
        return self._with_accounts(t)

    def _with_accounts(self, t):
        t.accounts = [a for a in self.admin_ok("GET", "/admin/accounts")["data"]
                      if t.group["id"] in a.get("group_ids", [])]
        t.account = t.accounts[0]
        return t

    def wait_usage(self, filter=None, count=1, timeout=10):
        """Poll GET /admin/usage until at least `count` rows match; returns the rows."""
        query = urllib.parse.urlencode({k: v for k, v in (filter or {}).items()
                                        if v is not None})
        path = "/admin/usage" + ("?" + query if query else "")
        deadline = time.monotonic() + timeout
        rows = []
        while True:
            rows = self.admin_ok("GET", path, expect=200)["data"]
            if len(rows) >= count:
                return rows
            if time.monotonic() >= deadline:
                raise AssertionError("%d usage rows for %s after %ss, wanted %d: %r"
                                     % (len(rows), path, timeout, count, rows))
            time.sleep(0.05)

    def wait_in_flight(self, account_id, timeout=5):
        """Wait until the account carries a request (as this node's admin API sees
        it); returns its state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.admin_ok("GET", "/admin/accounts/%d" % account_id)["state"]
            if state["in_flight"] or time.monotonic() >= deadline:
                return state
            time.sleep(0.05)

    def hold_account(self, tenant, delay_ms, watcher=None):
        """Start a request that keeps the tenant's account busy for delay_ms; returns
        its future once `watcher` (this node by default) sees it in flight."""
        pool = concurrent.futures.ThreadPoolExecutor(1)
        slow = pool.submit(self.post_messages, messages_body(mock={"delay_ms": delay_ms}),
                           key=tenant.api_key,
                           headers={"x-claude-code-session-id": self.unique("hold")})
        (watcher or self).wait_in_flight(tenant.account["id"])
        pool.shutdown(wait=False)
        return slow

    # -- upstream mock ----------------------------------------------------

    def mock_requests(self, which=0):
        return self.mocks[which].requests()

    def mock_clear(self):
        for m in self.mocks:
            m.clear()

    # -- client side ------------------------------------------------------

    @staticmethod
    def _client_headers(key, headers):
        hdrs = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if key is not None:
            hdrs["x-api-key"] = key
        hdrs.update(headers or {})
        return {k: v for k, v in hdrs.items() if v is not None}

    def get(self, path, key=None, headers=None, timeout=30, source=None):
        """GET a client path with the client's headers: (status, headers, raw body)."""
        return http_request(self.port, "GET", path, headers=self._client_headers(key, headers),
                            timeout=timeout, source=source)

    def post_messages(self, body, headers=None, key=None, path="/v1/messages", timeout=60):
        """(status, lowercased headers, raw body). A header set to None is left out."""
        return http_request(self.port, "POST", path, body=body,
                            headers=self._client_headers(key, headers), timeout=timeout)

    def post_at_once(self, body, key, n=50):
        """n clients post the same body at once; their (status, headers, raw)."""
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            return list(pool.map(lambda _: self.post_messages(body, key=key), range(n)))

    def stream_messages(self, body, key=None, headers=None, path="/v1/messages", timeout=60,
                        abort_after_events=None, arrived=None, arrived_after_events=1):
        """Send a streaming request and read the answer chunk by chunk.

        abort_after_events closes the client connection once that many
        complete SSE events have arrived; `arrived` (a threading.Event) is
        set once arrived_after_events have.
        """
        if isinstance(body, dict) and "stream" not in body:
            body = dict(body, stream=True)
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        chunks = []
        try:
            start = time.monotonic()
            conn.request("POST", path, body=data, headers=self._client_headers(key, headers))
            resp = conn.getresponse()
            raw = b""
            while True:
                piece = resp.read1(65536)
                if not piece:
                    break
                chunks.append((time.monotonic() - start, piece))
                raw += piece
                if (arrived is not None
                        and len(re.findall(rb"\r?\n\r?\n", raw)) >= arrived_after_events):
                    arrived.set()
                if (abort_after_events is not None
                        and len(re.findall(rb"\r?\n\r?\n", raw)) >= abort_after_events):
                    break
            events = parse_sse(raw) if resp.status == 200 else []
            return StreamResult(status=resp.status, headers=lower_headers(resp.headers),
                                raw=raw, chunks=chunks, events=events)
        finally:
            conn.close()

    # -- database ---------------------------------------------------------

    def db_write(self, sql):
        """One statement that changes the gateway's database from outside it."""
        if self.pg:
            self.pg.psql(sql)
            return
        con = sqlite3.connect(str(self.sqlite_path), timeout=10)
        try:
            con.execute(sql)
            con.commit()
        finally:
            con.close()

    def db_query(self, sql):
        """Rows of a read-only query on the gateway's database (values as strings for pgsql)."""
        if self.pg:
            return self.pg.psql(sql)
        con = sqlite3.connect("file:%s?mode=ro" % self.sqlite_path, uri=True, timeout=10)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
