"""stack.py: the real chatgw stack for integration tests.

Starts, in a fresh temp dir, a private redis-server and lighttpd on free 127.0.0.1
ports and chatgw.fcgi on a unix socket, with a database made by chatgwctl. Every
process is stopped by its own pid. Also a tiny TAP producer.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
TOP_BUILDDIR = os.environ.get("top_builddir") or os.path.join(TOP_SRCDIR, "build")


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name.replace("\n", " ")))
        if not cond and diag is not None:
            for line in str(diag).splitlines() or [""]:
                print("#   " + line)
        sys.stdout.flush()
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got:      %r\nexpected: %r" % (got, want))

    def diag(self, text):
        for line in str(text).splitlines():
            print("# " + line)
        sys.stdout.flush()

    def skip_all(self, why):
        print("1..0 # SKIP " + why)
        sys.exit(0)

    def done(self):
        print("1..%d" % self.n)
        sys.stdout.flush()
        sys.exit(1 if self.failed else 0)


def which(name, extra=()):
    for d in list(extra) + os.environ.get("PATH", "").split(":"):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    raise RuntimeError("timed out waiting for " + what)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.raw[:300])


class Stack:
    """The whole stack; use as a context manager."""

    def __init__(self, extra_config=None, roots=True, lighttpd_extra="", spawn_fcgi=False,
                 www=None):
        self.tmp = tempfile.mkdtemp(prefix="cgw-it-")
        self.procs = {}
        self.extra_config = extra_config or {}
        self.redis_bin = os.environ.get("REDIS_SERVER") or which("redis-server")
        self.lighttpd_bin = which("lighttpd", ["/usr/sbin", "/sbin"])
        self.fcgi_bin = os.path.join(TOP_BUILDDIR, "chatgw.fcgi")
        self.ctl_bin = os.path.join(TOP_BUILDDIR, "chatgwctl")
        self.projects = os.path.join(self.tmp, "projects")
        os.makedirs(os.path.join(self.projects, "demo"))
        self.www = os.path.join(self.tmp, "www")
        if www:
            # Serve a copy of these pages (deploy/www) at /, like the quickstart does.
            shutil.copytree(www, self.www)
        else:
            os.makedirs(self.www)
        self.socket = os.path.join(self.tmp, "chatgw.sock")
        self.config = os.path.join(self.tmp, "chatgw.conf")
        self.with_roots = roots
        self.lighttpd_extra = lighttpd_extra  # appended to the lighttpd config
        self.spawn_fcgi = spawn_fcgi  # start chatgw.fcgi the way spawn-fcgi/systemd do

    def missing(self):
        """Why the stack cannot run here, or None."""
        if not self.redis_bin:
            return "redis-server not installed"
        if not self.lighttpd_bin:
            return "lighttpd not installed"
        for b in (self.fcgi_bin, self.ctl_bin):
            if not os.access(b, os.X_OK):
                return b + " not built"
        return None

    # ---- processes -------------------------------------------------------
    def _spawn(self, name, argv, **kw):
        log = open(os.path.join(self.tmp, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=self.tmp, **kw)
        self.procs[name] = p
        return p

    def stop(self, name, sig=signal.SIGTERM, timeout=10):
        p = self.procs.pop(name, None)
        if not p:
            return
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def start_redis(self):
        if not hasattr(self, "redis_port"):
            self.redis_port = free_port()
        d = os.path.join(self.tmp, "redis")
        os.makedirs(d, exist_ok=True)
        self._spawn("redis", [self.redis_bin, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                              "--dir", d, "--save", "", "--appendonly", "yes",
                              "--appendfsync", "always", "--daemonize", "no"])

        def up():
            try:
                s = socket.create_connection(("127.0.0.1", self.redis_port), 0.2)
                s.sendall(b"PING\r\n")
                ok = s.recv(16).startswith(b"+PONG")
                s.close()
                return ok
            except OSError:
                return False
        wait_for(up, what="redis-server")

    def write_config(self):
        cfg = {
            "db.path": os.path.join(self.tmp, "chatgw.db"),
            "redis.address": "127.0.0.1:%d" % self.redis_port,
            "fcgi.socket": "" if self.spawn_fcgi else self.socket,
            "fcgi.threads": "4",
            "runner.path": os.path.join(TOP_BUILDDIR, "chatgw-runner"),
            "log.level": "info",
        }
        if self.with_roots:
            cfg["projects.roots"] = self.projects
        cfg.update(self.extra_config)
        with open(self.config, "w") as f:
            for k, v in cfg.items():
                f.write("%s = %s\n" % (k, v))

    def env(self):
        e = dict(os.environ)
        e["CHATGW_CONFIG"] = self.config
        return e

    def ctl(self, *args, check=True):
        r = subprocess.run([self.ctl_bin] + list(args), env=self.env(), capture_output=True,
                           text=True, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("chatgwctl %s: %s %s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def start_fcgi(self):
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        # CGW_VALGRIND=1 runs chatgw.fcgi under valgrind (a plain build); its report goes
        # to valgrind-fcgi.<pid>.log in the stack's temp dir (keep it with CGW_KEEP_TMP=1).
        wrap = []
        if os.environ.get("CGW_VALGRIND"):
            wrap = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite", "--show-possibly-lost=no",
                    "--log-file=" + os.path.join(self.tmp, "valgrind-fcgi.%p.log")]
        argv = wrap + [self.fcgi_bin, "-c", self.config]
        if self.spawn_fcgi:
            # spawn-fcgi opens the socket and hands it over as fd 0 (no fcgi.socket).
            argv = [which("spawn-fcgi", ["/usr/bin", "/usr/sbin"]), "-n", "-s", self.socket,
                    "-M", "0660", "--"] + argv
        self._spawn("fcgi", argv, env=self.env())
        wait_for(lambda: os.path.exists(self.socket) or self.procs["fcgi"].poll() is not None,
                 timeout=60 if wrap else 10, what="chatgw.fcgi socket")
        if self.procs["fcgi"].poll() is not None:
            raise RuntimeError("chatgw.fcgi exited: " + self.log("fcgi"))

    def start_lighttpd(self):
        if not hasattr(self, "port"):
            self.port = free_port()
        tmpl = open(os.path.join(TOP_SRCDIR, "deploy", "lighttpd", "chatgw.conf.in")).read()
        conf = (tmpl.replace("@BIND@", "127.0.0.1").replace("@PORT@", str(self.port))
                .replace("@WWW@", self.www).replace("@STATE@", self.tmp)
                .replace("@PREFIX@", "/api").replace("@SOCKET@", self.socket))
        path = os.path.join(self.tmp, "lighttpd.conf")
        with open(path, "w") as f:
            f.write(conf + "\n" + self.lighttpd_extra + "\n")
        self._spawn("lighttpd", [self.lighttpd_bin, "-D", "-f", path])

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return self.procs["lighttpd"].poll() is not None
        wait_for(up, what="lighttpd")
        if self.procs["lighttpd"].poll() is not None:
            raise RuntimeError("lighttpd exited: " + self.log("lighttpd"))

    def log(self, name):
        try:
            return open(os.path.join(self.tmp, name + ".log"), errors="replace").read()
        except OSError:
            return ""

    def __enter__(self):
        try:
            self.start_redis()
            self.write_config()
            self.ctl("init")
            self.start_fcgi()
            self.start_lighttpd()
        except Exception:
            self.close()
            raise
        return self

    def close(self):
        for name in list(self.procs):
            self.stop(name)
        if os.environ.get("CGW_KEEP_TMP"):
            print("# kept " + self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __exit__(self, *exc):
        self.close()

    # ---- users and HTTP --------------------------------------------------
    def user(self, name):
        self.ctl("user", "add", name)
        return self.ctl("token", "create", name).stdout.strip()

    def request(self, method, path, body=None, token=None, headers=None, raw=None, timeout=70):
        h = {}
        if token:
            h["Authorization"] = "Bearer " + token
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
            h["Content-Type"] = "application/json"
        elif body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, "/api" + path, body=data, headers=h)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read().decode("utf-8", "replace"))
        finally:
            c.close()


# ---- following a session like a client does ------------------------------------
def follow(st, token, sid, cursor, until=None, timeout=30.0, wait_ms=5000, seen=None):
    """Long-polls /chat/subscribe for one session from cursor, applying each event once
    (dropping seq <= cursor, as DESIGN says clients do), until until(events) is true or
    timeout. Returns (events, cursor). Every event returned is recorded in seen (a list)
    when given, duplicates included, so callers can check exactly-once delivery."""
    if until is None:
        def until(evs):
            return any(e.get("kind") == "complete" for e in evs)
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = st.request("POST", "/chat/subscribe",
                           {"sessions": [{"sessionId": sid, "lastSeq": cursor}],
                            "waitMs": wait_ms}, token=token, timeout=wait_ms / 1000.0 + 10)
        except OSError:
            time.sleep(0.2)  # the web server or the app is restarting: poll again
            continue
        if r.status != 200:
            time.sleep(0.2)
            continue
        for f in r.json.get("frames", []):
            if "seq" not in f:
                continue
            if seen is not None:
                seen.append(f)
            if f["seq"] <= cursor:
                continue
            events.append(f)
            cursor = f["seq"]
        if until(events):
            break
    return events, cursor
