"""cluster.py: two chatgw hosts of one deployment on one machine, for tests/cluster/.

Cluster() starts, each in its own temp dir and on free loopback ports:
  - PostgreSQL 15 (tests/lib/pg.sh), unless CHATGW_TEST_PG_URL names one already
    (make check-cluster starts one for all its tests); one fresh database per Cluster;
  - Redis: a primary, one replica and 3 Sentinels (tests/lib/redis_ha.py's RedisHA) when
    that module is there, else (ha=False, or before it existed) one plain redis-server;
  - hosts A and B: two Stacks (tests/lib/stack.py) with host.id A and B, their own
    projects root and agent HOME ($HOME of their processes), the one database (db.url)
    and the one Redis (redis.sentinels, or redis.address);
  - HAProxy in front (deploy/haproxy/haproxy.cfg.in), round robin over A's and B's
    lighttpd, health-checking GET <prefix>/health.

Every process is started here and ended by its own pid. Host.kill() plays a host that
dies: SIGKILL of every process of that host (its lighttpd, chatgw.fcgi, the runners and
the CLIs they started), found by a marker in their environment, never by name.

Cluster(proxy_a=True) plays a partition instead: host A reaches Redis only through a
loopback TCP proxy the test controls (tests/lib/tcpproxy.py; redis.address of A's
configuration, so every Redis connection of A: workers, poller, host queue consumer,
reaper, runners, chatgwctl). c.a.cut_off() drops every connection A has and blackholes
new ones; c.a.heal() lets them through again. The test's own Redis commands (c.redis,
a.redis) go straight to Redis. It needs the plain Redis (ha=False): Sentinel hands every
client the one address of the primary, the same to every host, so one host's way to
it cannot be routed apart from the other's on one loopback.

Scenarios (tests/cluster/): follow (a run made on A followed via B and HAProxy), homes
(send, abort, permissions across hosts), hostdown (A killed mid-run), failover
(Sentinel failover and the old primary's SIGKILL mid-run), dataloss (Redis restarted
empty mid-run), partition (A cut off from Redis longer than runner.lease_s: A's runner
fences itself, B reaps and runs the session, two CLIs never at once).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stack import (LIMIT, TOP_BUILDDIR, TOP_SRCDIR, Stack, free_port, redis_command, wait_for,  # noqa: E402
                   wait_until, which)

from tcpproxy import TcpProxy  # noqa: E402

try:
    from redis_ha import RedisHA  # noqa: E402 - tests/lib/redis_ha.py (Sentinel tier)
except ImportError:  # pragma: no cover - before that module existed
    RedisHA = None

FAKE_CLAUDE = os.path.join(TOP_SRCDIR, "tests", "fixtures", "fake-claude")
PG_SH = os.path.join(TOP_SRCDIR, "tests", "lib", "pg.sh")
HAPROXY_TEMPLATE = os.path.join(TOP_SRCDIR, "deploy", "haproxy", "haproxy.cfg.in")
# The environment variable that marks every process of one host (inherited by
# chatgw.fcgi, its runners and their CLIs: the runner strips only CHATGW_*).
MARKER = "CGW_TEST_HOST"


def config_knows(key, value="x"):
    """Does this build's configuration know key? (Pieces of issue 12 come in steps: a
    scenario that needs a key the build lacks is left out, never faked.)"""
    ctl = os.path.join(TOP_BUILDDIR, "chatgwctl")
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write("%s = %s\n" % (key, value))
        f.flush()
        r = subprocess.run([ctl, "-c", f.name, "user", "list"], capture_output=True, text=True)
    return "unknown key" not in r.stderr


def haproxy_bin():
    return which("haproxy", ["/usr/sbin", "/sbin"])


def pids_with_env(entry):
    """The pids of live processes whose environment holds entry ("NAME=value")."""
    want = entry.encode()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if want in env:
            out.append(int(d))
    return out


class Host(Stack):
    """One host of the cluster: a Stack with its own host.id, projects root, agent HOME,
    fake-claude record file, and a marker in the environment of all its processes."""

    def __init__(self, cluster, name, extra_config=None):
        cfg = dict(cluster.host_config)
        if cluster.homes:
            cfg["host.id"] = name
        cfg.update(extra_config or {})
        super().__init__(extra_config=cfg, redis_port=cluster.redis_port)
        self.name = name
        self.cluster = cluster
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        self.pidfile = os.path.join(self.tmp, "fake-claude.jsonl")
        self.marker = "%s=%s" % (MARKER, self.tmp)
        self.dead = False
        self.proxy = cluster.a_proxy if name == "A" else None

    def env(self):
        e = super().env()
        e["HOME"] = self.home
        e["FAKE_CLAUDE_PIDFILE"] = self.pidfile
        e[MARKER] = self.tmp
        return e

    def _spawn(self, name, argv, **kw):
        # lighttpd too carries the marker (Stack starts it with the test's environment).
        kw.setdefault("env", self.env())
        return super()._spawn(name, argv, **kw)

    def records(self):
        """What the fake CLIs of this host recorded (one dict per line)."""
        try:
            return [json.loads(line) for line in open(self.pidfile)]
        except OSError:
            return []

    def cli_groups(self):
        """The process groups of the CLIs this host started."""
        return {r["pgid"] for r in self.records() if "pgid" in r}

    def processes(self):
        """The pids of every live process of this host."""
        return pids_with_env(self.marker)

    def kill(self):
        """The host dies: SIGKILL of all its processes (lighttpd and chatgw.fcgi first, so
        that nothing new is spawned), repeated until none is left."""
        self.dead = True
        for name in ("lighttpd", "fcgi"):
            p = self.procs.get(name)
            if p and p.poll() is None:
                p.kill()
                p.wait()

        def gone():
            left = self.processes()
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            return not left
        wait_for(gone, what="host %s's processes to die" % self.name)

    def cut_off(self):
        """The host loses Redis (Cluster(proxy_a=True), host A): every connection it has
        is dropped, new ones are accepted and never answered, until heal()."""
        self.proxy.cut()

    def heal(self):
        self.proxy.heal()

    def close(self):
        for pid in self.processes():  # runners and CLIs outlive chatgw.fcgi by design
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        super().close()


class Front:
    """HAProxy in front of the hosts: request() like a Stack's (follow() takes it)."""

    request = Stack.request

    def __init__(self, port, prefix):
        self.port = port
        self.prefix = prefix


class Cluster:
    """Use as a context manager: with Cluster() as c: c.a, c.b, c.lb (HAProxy)."""

    def __init__(self, host_config=None, a_config=None, b_config=None, ha=True,
                 proxy_a=False):
        self.tmp = tempfile.mkdtemp(prefix="cgw-cluster-")
        self.host_config = {"claude.bin": FAKE_CLAUDE, "runner.term_grace_ms": "1000",
                            "runner.kill_grace_ms": "2000", "permissions.timeout_s": "60"}
        self.host_config.update(host_config or {})
        self.a_config = a_config or {}
        self.b_config = b_config or {}
        self.ha = None
        # What this build has: Sentinel (redis.sentinels), home hosts (host.id).
        self.sentinel = RedisHA is not None and config_knows("redis.sentinels", "127.0.0.1:1")
        self.homes = config_knows("host.id", "A")
        self.want_ha = ha and self.sentinel
        # proxy_a: host A's Redis through a TcpProxy (see the module's docstring).
        if proxy_a and self.want_ha:
            raise ValueError("proxy_a needs the plain Redis (ha=False)")
        self.proxy_a = proxy_a
        self.a_proxy = None
        self.redis_proc = None
        self.pg_pid = None
        self.haproxy = None
        self.hosts = []
        self.a = self.b = self.lb = None

    @staticmethod
    def missing():
        """Why a cluster cannot run here, or None."""
        probe = Stack()
        why = probe.missing()
        probe.close()
        if why:
            return why
        if not os.access(os.path.join(os.path.dirname(probe.fcgi_bin), "chatgw-runner"), os.X_OK):
            return "chatgw-runner not built"
        if not haproxy_bin():
            return "haproxy not installed"
        if not which("psql"):
            return "psql not installed (postgresql-client-15)"
        if not os.environ.get("CHATGW_TEST_PG_URL") and subprocess.run(
                ["sh", "-c", '. "$1"; pg_bindir', "sh", PG_SH],
                stdout=subprocess.DEVNULL).returncode != 0:
            return "no PostgreSQL server (postgresql-15)"
        return None

    # ---- PostgreSQL --------------------------------------------------------------------
    def start_pg(self):
        url = os.environ.get("CHATGW_TEST_PG_URL")
        if not url:
            d = os.path.join(self.tmp, "pg")
            r = subprocess.run(["sh", "-c", '. "$1"; pg_start "$2" >&2 || exit 1; '
                                'echo "$PG_PID $CHATGW_TEST_PG_URL"', "sh", PG_SH, d],
                               capture_output=True, text=True, timeout=LIMIT * 2)
            if r.returncode != 0:
                raise RuntimeError("PostgreSQL did not start: " + r.stderr)
            pid, url = r.stdout.split()
            self.pg_pid = int(pid)
        self.pg_server = url
        db = "chatgw_c_" + "".join(c if c.isalnum() else "_" for c in os.path.basename(self.tmp))
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
                        'CREATE DATABASE "%s"' % db.lower()], check=True,
                       stdout=subprocess.DEVNULL)
        self.db_url = url.rsplit("/", 1)[0] + "/" + db.lower()

    # ---- Redis -----------------------------------------------------------------------
    def start_redis(self):
        if self.want_ha:
            self.ha = RedisHA(os.path.join(self.tmp, "redis"), replicas=1, sentinels=3,
                              master_name="chatgw")
            self.ha.start()
            self.redis_port = self.ha.primary_port
            self.host_config.setdefault("redis.sentinels", self.ha.sentinels)
            self.host_config.setdefault("redis.master_name", "chatgw")
            return
        self.redis_port = free_port()
        self.redis_dir = os.path.join(self.tmp, "redis")
        os.makedirs(self.redis_dir, exist_ok=True)
        self.start_plain_redis()

    def start_plain_redis(self):
        """One redis-server without persistence (a restart loses everything)."""
        log = open(os.path.join(self.tmp, "redis.log"), "ab")
        self.redis_proc = subprocess.Popen(
            [which("redis-server") if not os.environ.get("REDIS_SERVER")
             else os.environ["REDIS_SERVER"], "--port", str(self.redis_port),
             "--bind", "127.0.0.1", "--dir", self.redis_dir, "--save", "", "--appendonly", "no",
             "--daemonize", "no"], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)

        def up():
            try:
                return redis_command(self.redis_port, "PING") == "PONG"
            except OSError:
                return False
        wait_for(up, what="redis-server")

    def stop_plain_redis(self, sig=signal.SIGKILL):
        if self.redis_proc and self.redis_proc.poll() is None:
            self.redis_proc.send_signal(sig)
            self.redis_proc.wait()
        self.redis_proc = None

    def redis_primary(self):
        """The port of the Redis primary right now."""
        if self.ha:
            return self.ha.primary_port
        return self.redis_port

    def redis(self, *args):
        return redis_command(self.redis_primary(), *args)

    # ---- HAProxy -----------------------------------------------------------------------
    def start_haproxy(self):
        port = free_port()
        tmpl = open(HAPROXY_TEMPLATE).read()
        conf = (tmpl.replace("@BIND@", "127.0.0.1").replace("@PORT@", str(port))
                .replace("@PREFIX@", self.a.prefix)
                .replace("@HOST_A@", "127.0.0.1:%d" % self.a.port)
                .replace("@HOST_B@", "127.0.0.1:%d" % self.b.port))
        path = os.path.join(self.tmp, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(conf)
        log = open(os.path.join(self.tmp, "haproxy.log"), "ab")
        # -db: foreground, no daemon; the pid we hold is HAProxy's own.
        self.haproxy = subprocess.Popen([haproxy_bin(), "-db", "-f", path], stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=self.tmp)
        self.lb = Front(port, self.a.prefix)

        def up():
            if self.haproxy.poll() is not None:
                return True
            try:
                return self.lb.request("GET", "/health", timeout=5).status == 200
            except OSError:
                return False
        wait_for(up, what="haproxy")
        if self.haproxy.poll() is not None:
            raise RuntimeError("haproxy exited: " + self.log("haproxy"))

    def log(self, name):
        try:
            return open(os.path.join(self.tmp, name + ".log"), errors="replace").read()
        except OSError:
            return ""

    # ---- the whole -------------------------------------------------------------------
    def __enter__(self):
        try:
            self.start_pg()
            self.start_redis()
            self.host_config["db.url"] = self.db_url
            if self.proxy_a:
                self.a_proxy = TcpProxy(self.redis_port)
                self.a_config = dict(self.a_config)
                self.a_config["redis.address"] = "127.0.0.1:%d" % self.a_proxy.port
            self.a = Host(self, "A", self.a_config)
            self.hosts.append(self.a)
            self.b = Host(self, "B", self.b_config)
            self.hosts.append(self.b)
            for h in self.hosts:
                h.__enter__()
            self.start_haproxy()
        except Exception:
            self.close()
            raise
        return self

    def close(self):
        if self.haproxy and self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait()
        for h in self.hosts:
            h.close()
        if self.a_proxy:
            self.a_proxy.close()
        if self.ha:
            self.ha.close()
        self.stop_plain_redis(signal.SIGTERM)
        if self.pg_pid:
            try:
                os.kill(self.pg_pid, signal.SIGINT)  # fast shutdown
            except OSError:
                pass
            wait_until(lambda: not os.path.exists("/proc/%d" % self.pg_pid)
                       or open("/proc/%d/stat" % self.pg_pid).read().split(") ")[1][0] == "Z")
        if os.environ.get("CGW_KEEP_TMP"):
            print("# kept " + self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __exit__(self, *exc):
        self.close()


# ---- helpers the scenarios share -------------------------------------------------------
def kinds(evs):
    return [e["kind"] for e in evs]


def gapless(evs, start):
    return [e["seq"] for e in evs] == list(range(start + 1, start + 1 + len(evs)))


def history(st, token, sid):
    """The session's history (via st) once it holds its last run's complete."""
    def read():
        r = st.request("GET", "/sessions/%s/messages?limit=1000" % sid, token=token)
        return r.json["messages"] if r.status == 200 else []
    return wait_until(lambda: (lambda m: m if m and m[-1]["kind"] == "complete" else None)(
        read())) or read()


def one_content(seen):
    """{(session, seq)} delivered with more than one content (should stay empty)."""
    by = {}
    for f in seen:
        key = (f.get("sessionId"), f.get("seq"))
        body = json.dumps(f, sort_keys=True)
        by.setdefault(key, set()).add(body)
    return {k: v for k, v in by.items() if len(v) > 1}

