"""stack.py: the real chatgw stack for integration tests.

Starts, in a fresh temp dir, a private redis-server and lighttpd on free 127.0.0.1
ports and chatgw.fcgi on a unix socket, with a database made by chatgwctl. Every
process is stopped by its own pid. Also a tiny TAP producer.

Stack(server=...) picks the web server, each from its template in deploy/:
  "lighttpd"      lighttpd + mod_fastcgi, chatgw.fcgi started here (the default)
  "apache-proxy"  a private Apache 2.4 (event MPM) + mod_proxy_fcgi to the same socket
  "apache-fcgid"  a private Apache 2.4 + mod_fcgid, which starts chatgw.fcgi itself
"""
import http.client
import glob
import json
import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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


APACHE_MODULES = "/usr/lib/apache2/modules"
SERVERS = ("lighttpd", "apache-proxy", "apache-fcgid")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- waiting: for an event or a state, never for time --------------------------------
# A test waits for what it means (a readiness signal, a state it can read, the event it
# expects), bounded by LIMIT, and then asserts order and content. LIMIT only guards
# against a hang: it is never a figure under test (timings belong to make bench).
LIMIT = 60.0


def wait_for(pred, timeout=LIMIT, what="condition"):
    """Polls pred() until it is true; RuntimeError after timeout seconds (a hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    raise RuntimeError("timed out waiting for " + what)


def wait_until(pred, timeout=LIMIT):
    """Like wait_for, but returns pred()'s last value instead of raising: for t.ok()."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return pred()


class Background:
    """fn(*args, **kw) in a daemon thread. done() says whether it returned; join() waits
    for it (bounded by LIMIT) and returns its result, or None (error holds what it
    raised)."""

    def __init__(self, fn, *args, **kw):
        self.result = self.error = None
        self._th = threading.Thread(target=self._run, args=(fn, args, kw), daemon=True)
        self._th.start()

    def _run(self, fn, args, kw):
        try:
            self.result = fn(*args, **kw)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            self.error = e

    def done(self):
        return not self._th.is_alive()

    def join(self, timeout=LIMIT):
        self._th.join(timeout)
        return self.result


def _resp(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise OSError("redis: connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError("redis: " + rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp(f) for _ in range(n)]
    raise OSError("redis: bad reply %r" % line)


def redis_command(port, *args):
    """One command to the redis-server on 127.0.0.1:port (RESP, no client library), e.g.
    to delete or PEXPIRE a key instead of waiting for its TTL. Returns the reply."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    s = socket.create_connection(("127.0.0.1", port), LIMIT)
    try:
        s.sendall(out)
        with s.makefile("rb") as f:
            return _resp(f)
    finally:
        s.close()


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


def pg_database(name):
    """Creates database name (made safe) on CHATGW_TEST_PG_URL's server; returns its URL."""
    url = os.environ["CHATGW_TEST_PG_URL"]
    db = "chatgw_s_" + "".join(c if c.isalnum() else "_" for c in name.lower())
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
                    'CREATE DATABASE "%s"' % db], check=True, stdout=subprocess.DEVNULL)
    return url.rsplit("/", 1)[0] + "/" + db


# ---- the store, backend-neutral -------------------------------------------------------
# Tests read and write the store directly (fixtures no API makes, state to check) through
# store_sql(target, query, params), where target is the stack's SQLite file or, under
# `make check-postgres`, its database's postgresql:// URL. The query uses "?" placeholders
# and SQL both dialects accept; on PostgreSQL the parameters are bound as quoted literals
# and the statement goes to psql on stdin (no client library here, no argv size limit).

def test_store():
    """The backend the stacks of this run use: "postgres" (make check-postgres) or "sqlite"."""
    return "postgres" if os.environ.get("CHATGW_TEST_STORE") == "postgres" else "sqlite"


def pg_literal(v):
    """v as a PostgreSQL literal (standard_conforming_strings on, the default)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"  # the schema's flags are integers 0/1, as in SQLite
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "'\\x%s'::bytea" % bytes(v).hex()
    s = str(v)
    if "\0" in s:
        raise ValueError("PostgreSQL text cannot hold NUL")
    return "'" + s.replace("'", "''") + "'"


def bind_params(query, params, literal):
    """query with each "?" outside quotes replaced by literal(next parameter)."""
    out, it, quote = [], iter(params), None
    for c in query:
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "?":
            try:
                c = literal(next(it))
            except StopIteration:
                raise ValueError("too few parameters for: " + query) from None
        out.append(c)
    if next(it, out) is not out:
        raise ValueError("too many parameters for: " + query)
    return "".join(out)


def pg_sql(url, query, params=()):
    """Runs one statement on the PostgreSQL database at url; returns its rows as tuples
    (bigint as int, NULL as None, bytea as PostgreSQL's "\\x..." text). The rows travel
    as JSON (json_agg), so no value can be confused with a separator."""
    q = bind_params(query.strip().rstrip(";"), params, pg_literal)
    head = q.split(None, 1)[0].upper()
    if head in ("SELECT", "WITH", "VALUES", "TABLE"):
        q = "SELECT coalesce(json_agg(r), '[]') FROM (%s) r" % q
    elif " RETURNING " in " ".join(q.upper().split()) + " ":
        q = "WITH r AS (%s) SELECT coalesce(json_agg(r), '[]') FROM r" % q
    else:
        head = None  # no rows to read
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url],
                       input=q + ";\n", capture_output=True, text=True, timeout=LIMIT)
    if r.returncode != 0:
        raise RuntimeError("psql: %s\nin: %s" % (r.stderr.strip(), q[:500]))
    if head is None:
        return []
    # Each row is a JSON object, its columns in order: keep the values, in that order.
    return [tuple(row) for row in
            json.loads(r.stdout, object_pairs_hook=lambda pairs: [v for _, v in pairs])]


def store_sql(target, query, params=()):
    """One statement on the store at target (a SQLite file, or a postgresql:// URL);
    committed; returns the rows as tuples."""
    if target.startswith(("postgresql://", "postgres://")):
        return pg_sql(target, query, params)
    import sqlite3
    con = sqlite3.connect(target, timeout=10)
    try:
        rows = con.execute(query, params).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


class Stack:
    """The whole stack; use as a context manager."""

    def __init__(self, extra_config=None, roots=True, lighttpd_extra="", spawn_fcgi=False,
                 server="lighttpd", socket_activate=False, prefix="/api", www=None,
                 redis_port=None):
        assert server in SERVERS, server
        # redis_port: use that (already running) Redis, e.g. another stack's, so that two
        # stacks act as two hosts of one deployment; this stack neither starts nor stops it.
        self.external_redis = redis_port is not None
        if self.external_redis:
            self.redis_port = redis_port
        self.server = server
        self.prefix = prefix  # http.prefix, and where the web server mounts the API
        self.apache_bin = which("apache2", ["/usr/sbin", "/sbin"])
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
        self.spawn_fcgi = spawn_fcgi  # start chatgw.fcgi the way spawn-fcgi does (fd 0)
        # ... or the way systemd's chatgw.socket does (LISTEN_FDS, fd 3); fcgi.socket then
        # names another path, which the inherited socket must win over.
        self.socket_activate = socket_activate

    def missing(self):
        """Why the stack cannot run here, or None."""
        if not self.redis_bin:
            return "redis-server not installed"
        if self.server == "lighttpd" and not self.lighttpd_bin:
            return "lighttpd not installed"
        if self.server.startswith("apache"):
            if not self.apache_bin:
                return "apache2 not installed"
            mod = "mod_fcgid.so" if self.server == "apache-fcgid" else "mod_proxy_fcgi.so"
            if not os.path.exists(os.path.join(APACHE_MODULES, mod)):
                return mod + " not installed"
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
        if self.external_redis:
            return
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
            "fcgi.socket": ("" if self.spawn_fcgi else
                            os.path.join(self.tmp, "not-this.sock") if self.socket_activate
                            else self.socket),
            "fcgi.threads": "4",
            "runner.path": os.path.join(TOP_BUILDDIR, "chatgw-runner"),
            "log.level": "info",
            # The fixture CLIs are watched from outside (pids, pid files in the temp dir),
            # which a sandbox's pid namespace and private /tmp would hide: stacks run
            # without one unless a test asks (sandbox.test, the live tier). Here and not
            # only in the environment: systemd-socket-activate passes no environment on.
            "runner.sandbox": "none",
        }
        # CHATGW_TEST_STORE=postgres (make check-postgres): a fresh database on the
        # private PostgreSQL that CHATGW_TEST_PG_URL names, one per stack.
        if os.environ.get("CHATGW_TEST_STORE") == "postgres":
            # Once per stack: tests rewrite the configuration of a running stack.
            if not getattr(self, "pg_url", None):
                self.pg_url = pg_database(os.path.basename(self.tmp))
            cfg["db.url"] = self.pg_url
        if self.prefix != "/api":
            cfg["http.prefix"] = self.prefix
        if self.with_roots:
            cfg["projects.roots"] = self.projects
        if os.environ.get("CGW_VALGRIND"):
            # The runners too: runner.path becomes a script that starts the real one
            # under valgrind, its report in valgrind-runner.<pid>.log.
            wrapper = os.path.join(self.tmp, "runner-valgrind")
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\nexec %s -q --leak-check=full --errors-for-leak-kinds=definite "
                        "--show-possibly-lost=no --log-file=%s %s \"$@\"\n"
                        % (which("valgrind"), os.path.join(self.tmp, "valgrind-runner.%p.log"),
                           cfg["runner.path"]))
            os.chmod(wrapper, 0o755)
            cfg["runner.path"] = wrapper
        cfg.update(self.extra_config)
        with open(self.config, "w") as f:
            for k, v in cfg.items():
                f.write("%s = %s\n" % (k, v))

    # ---- the store ---------------------------------------------------------
    @property
    def store(self):
        """"postgres" or "sqlite": the backend this stack's configuration names."""
        return "postgres" if getattr(self, "pg_url", None) else "sqlite"

    @property
    def db_target(self):
        """Where the store is: the SQLite file, or the PostgreSQL database's URL."""
        return getattr(self, "pg_url", None) or os.path.join(self.tmp, "chatgw.db")

    def sql(self, query, params=()):
        """One statement ("?" placeholders) on this stack's store: see store_sql."""
        return store_sql(self.db_target, query, params)

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
        # CGW_VALGRIND=1 runs chatgw.fcgi (and the runners) under valgrind (a plain build);
        # its report goes to valgrind-fcgi.<pid>.log in the stack's temp dir (keep it with CGW_KEEP_TMP=1).
        wrap = []
        if os.environ.get("CGW_VALGRIND"):
            wrap = [which("valgrind"), "-q", "--leak-check=full", "--errors-for-leak-kinds=definite", "--show-possibly-lost=no",
                    "--log-file=" + os.path.join(self.tmp, "valgrind-fcgi.%p.log")]
        argv = wrap + [self.fcgi_bin, "-c", self.config]
        if self.spawn_fcgi:
            # spawn-fcgi opens the socket and hands it over as fd 0 (no fcgi.socket).
            argv = [which("spawn-fcgi", ["/usr/bin", "/usr/sbin"]), "-n", "-s", self.socket,
                    "-M", "0660", "--"] + argv
        if self.socket_activate:
            argv = [which("systemd-socket-activate", ["/usr/bin", "/lib/systemd"]), "-l",
                    self.socket, "--"] + argv
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
                .replace("@PREFIX@", self.prefix).replace("@SOCKET@", self.socket))
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

    # ---- Apache ------------------------------------------------------------
    def _apache_user(self):
        """The User/Group Apache's children switch to when it starts as root, else None."""
        if os.geteuid() != 0:
            return None
        for user, group in (("www-data", "www-data"), ("nobody", "nogroup")):
            try:
                return pwd.getpwnam(user), grp.getgrnam(group)
            except KeyError:
                continue
        raise RuntimeError("no unprivileged user for Apache's children")

    def _reachable(self, ug, path):
        """Can the Apache user execute path (every directory on the way searchable)?"""
        r = subprocess.run(["setpriv", "--reuid", str(ug[0].pw_uid), "--regid", str(ug[1].gr_gid),
                            "--clear-groups", "test", "-x", path], capture_output=True)
        return r.returncode == 0

    def _expose_for_fcgid(self, ug):
        """Under mod_fcgid as root, chatgw.fcgi, its runners and the provider CLIs run as the
        Apache user: give it the stack's files, and copies of programs it cannot reach."""
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)

        def expose(path):
            if not os.path.isabs(path) or self._reachable(ug, path):
                return path
            copy = os.path.join(bindir, os.path.basename(path))
            shutil.copy2(path, copy)
            return copy
        self.fcgi_exe = expose(self.fcgi_bin)
        # PATH (for the provider CLIs' interpreters) without what the user cannot reach.
        self.fcgid_path = ":".join(x for x in os.environ.get("PATH", "/usr/bin:/bin").split(":")
                                   if x and self._reachable(ug, x))
        changed = {}
        for line in open(self.config):
            k, _, v = line.partition("=")
            k, v = k.strip(), v.strip()
            if (k == "runner.path" or k.endswith(".bin")) and v:
                nv = expose(v)
                if nv != v:
                    changed[k] = nv
        if changed:
            self.extra_config.update(changed)
            self.write_config()
        uid, gid = ug[0].pw_uid, ug[1].gr_gid
        for d, dirs, files in os.walk(self.tmp):
            for n in [d] + [os.path.join(d, x) for x in dirs + files]:
                os.lchown(n, uid, gid)

    def start_apache(self):
        if not hasattr(self, "port"):
            self.port = free_port()
        fcgid = self.server == "apache-fcgid"
        ug = self._apache_user()
        d = os.path.join(self.tmp, "apache")
        os.makedirs(os.path.join(d, "run"), exist_ok=True)
        self.fcgi_exe = self.fcgi_bin
        self.fcgid_path = os.environ.get("PATH", "/usr/bin:/bin")
        if ug:
            # The children (not root) reach the socket and the web root; the socket's
            # group is theirs, as spawn-fcgi -g or SocketGroup= would make it.
            os.chmod(self.tmp, 0o711)
            os.chmod(self.www, 0o755)
            if fcgid:
                self._expose_for_fcgid(ug)
            elif os.path.exists(self.socket):
                os.chown(self.socket, -1, ug[1].gr_gid)
        name = "chatgw-fcgid.conf.in" if fcgid else "chatgw-proxy-fcgi.conf.in"
        tmpl = open(os.path.join(TOP_SRCDIR, "deploy", "apache", name)).read()
        site = (tmpl.replace("@BIND@", "127.0.0.1").replace("@PORT@", str(self.port))
                .replace("@WWW@", self.www).replace("@LOGDIR@", self.tmp)
                .replace("@PREFIX@", self.prefix).replace("@SOCKET@", self.socket)
                .replace("@FCGI@", self.fcgi_exe).replace("@CONFIG@", self.config)
                .replace("@PATH@", self.fcgid_path))
        mods = ["mpm_event", "authz_core", "mime", "dir", "env", "setenvif", "headers"]
        mods += ["fcgid"] if fcgid else ["proxy", "proxy_fcgi"]
        main = ["# written by tests/lib/stack.py: a private Apache for one test",
                "ServerRoot \"%s\"" % d,
                "ServerName 127.0.0.1",
                "Listen 127.0.0.1:%d" % self.port,
                "PidFile \"%s/apache.pid\"" % d,
                "DefaultRuntimeDir \"%s/run\"" % d,
                "Mutex file:%s/run default" % d,
                "ErrorLog \"%s/apache-error.log\"" % self.tmp,
                "LogLevel warn",
                "StartServers 1",
                "ServerLimit 2",
                "ThreadsPerChild 25",
                "MaxRequestWorkers 50"]
        main += ["LoadModule %s_module %s/mod_%s.so" % (m, APACHE_MODULES, m) for m in mods]
        if os.path.exists("/etc/mime.types"):
            main.append("TypesConfig /etc/mime.types")
        if ug:
            main += ["User %s" % ug[0].pw_name, "Group %s" % ug[1].gr_name]
        if fcgid:
            main += ["FcgidIPCDir \"%s/fcgid\"" % d,
                     "FcgidProcessTableFile \"%s/fcgid_shm\"" % d]
        site_path = os.path.join(self.tmp, "apache-site.conf")
        with open(site_path, "w") as f:
            f.write(site)
        main.append("Include \"%s\"" % site_path)
        path = os.path.join(self.tmp, "apache.conf")
        with open(path, "w") as f:
            f.write("\n".join(main) + "\n")
        # Apache's own children and, under mod_fcgid, chatgw.fcgi get this environment.
        self._spawn("apache", [self.apache_bin, "-f", path, "-DFOREGROUND"], env=self.env())

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return self.procs["apache"].poll() is not None
        wait_for(up, what="apache2")
        if self.procs["apache"].poll() is not None:
            raise RuntimeError("apache2 exited: " + self.log("apache") + self.log("apache-error"))

    # ---- state to wait for --------------------------------------------------
    def redis(self, *args):
        """A command to the stack's redis-server (see redis_command)."""
        return redis_command(self.redis_port, *args)

    def polls(self):
        """chatgw.fcgi's long-polls, {held, total} from GET /health: held right now, and
        held since it started (counted when the request is parked). One chatgw.fcgi
        only (not under apache-fcgid, which may start several)."""
        r = self.request("GET", "/health", timeout=LIMIT)
        return dict({"held": 0, "total": 0}, **((r.json or {}).get("polls") or {}))

    def parked(self):
        """polls()["total"]: note it before a subscribe, then wait_parked(n + 1)."""
        return self.polls()["total"]

    def wait_parked(self, n, timeout=LIMIT):
        """Waits until chatgw.fcgi has parked n subscribe requests since it started: a
        request counted there found nothing to answer and now waits for an event or its
        waitMs (anything published from then on wakes it). True, or False after the
        guard timeout."""
        return bool(wait_until(lambda: self.parked() >= n, timeout))

    def log_count(self, name, text):
        """How many lines of the process's log contain text (a log line as a signal)."""
        return sum(1 for line in self.log(name).splitlines() if text in line)

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
            if self.server != "apache-fcgid":
                self.start_fcgi()
            if self.server == "lighttpd":
                self.start_lighttpd()
            else:
                self.start_apache()
        except Exception:
            self.close()
            raise
        return self

    def close(self):
        for name in list(self.procs):
            self.stop(name)
        # Under CGW_VALGRIND a report that is not empty is printed (TAP diagnostics) and
        # kept in valgrind-reports/ of the build dir, so it outlives the temp dir.
        for f in sorted(glob.glob(os.path.join(self.tmp, "valgrind-*.log"))):
            if os.path.getsize(f) > 0:
                keep = os.path.join(TOP_BUILDDIR, "valgrind-reports")
                os.makedirs(keep, exist_ok=True)
                shutil.copy(f, keep)
                with open(f) as fh:
                    print("# valgrind: " + "# ".join(fh.readlines()[:40]))
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
            c.request(method, self.prefix + path, body=data, headers=h)
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
