#!/usr/bin/env python3
"""run.py: make bench. Starts its own redis-server, lighttpd, chatgw.fcgi and a FastCGI
hello-world (tests/lib/stack.py, on free loopback ports, with the deploy/ configs), drives
them with tests/bench/load (C, epoll) and tests/bench/bench-pub, prints a table and writes
every figure and the exact setup as JSON. See tests/bench/README.md."""
import argparse
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from stack import TOP_BUILDDIR, TOP_SRCDIR, Stack, wait_for  # noqa: E402
import compare  # noqa: E402

BENCH = os.path.join(TOP_BUILDDIR, "tests", "bench")
SESSIONS = 100        # sessions the held polls are spread over
RATE = 100            # events/s published during a hold run
HOLD_SECS = 10        # seconds of publishing per hold run
WAIT_MS = 55000       # waitMs of the held polls (limits.wait_ms_max)
RATE_CONNS = 32       # closed-loop connections of the request-rate runs
RATE_SECS = 5
FIRST_EVENT_SENDS = 30
RUNNER_EVENTS = 20000


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# ---- the stack --------------------------------------------------------------------
class BenchStack(Stack):
    """Stack with Redis as deploy/quickstart.sh runs it (AOF, fsync policy selectable,
    TCP loopback), lighttpd's connection limits raised for 10 000 held requests, the
    hello-world FastCGI program behind the same lighttpd under /hello and the stream
    floors (tests/bench/fcgi-floor: long-polls and event streams with no work) under
    /floor."""

    def __init__(self, fsync="everysec", threads=8, polls=0):
        self.fsync = fsync
        self.threads = threads
        # A lighttpd holds two descriptors per held poll (client and FastCGI). When the
        # hard limit on open files (here: no CAP_SYS_RESOURCE to raise it) is too small
        # for all polls in one lighttpd, the polls are spread over several, all in front
        # of the one chatgw.fcgi that is measured.
        fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        self.max_fds = min(fd_limit, 65536)
        self.web_servers = max(1, -(-(2 * polls + 1024) // self.max_fds))
        self.max_conns = min(30000, (self.max_fds - 256) // 2)
        super().__init__(extra_config={
            "fcgi.threads": str(threads),
            "log.level": "warn",
            "claude.bin": os.path.join(BENCH, "fast-claude"),
            "limits.max_polls_per_user": "1000000",
            "limits.max_polls": "1000000",
            "limits.max_runs_per_user": "100000",
            "stream.maxlen": "1000000",
        })
        self.hello_socket = os.path.join(self.tmp, "hello.sock")
        self.floor_socket = os.path.join(self.tmp, "floor.sock")
        self.floor_trigger = os.path.join(self.tmp, "floor-trigger.sock")

    def start_redis(self):
        self.redis_port = self.redis_port if hasattr(self, "redis_port") else _free_port()
        d = os.path.join(self.tmp, "redis")
        os.makedirs(d, exist_ok=True)
        self._spawn("redis", [self.redis_bin, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                              "--dir", d, "--save", "", "--appendonly", "yes",
                              "--appendfsync", self.fsync, "--daemonize", "no",
                              "--maxclients", "10000"])
        wait_for(lambda: redis_cmd(self.redis_port, "PING") == "PONG", what="redis-server")

    def start_lighttpd(self):
        self._spawn("hello", [os.path.join(BENCH, "hello"), self.hello_socket, str(self.threads)])
        wait_for(lambda: os.path.exists(self.hello_socket), what="hello socket")
        self._spawn("floor", [os.path.join(BENCH, "fcgi-floor"), self.floor_socket,
                              self.floor_trigger, str(self.threads)])
        wait_for(lambda: os.path.exists(self.floor_socket), what="fcgi-floor socket")
        self.ports = []
        for i in range(self.web_servers):
            self.ports.append(self._lighttpd(i))
        self.port = self.ports[0]

    def _lighttpd(self, i):
        port = _free_port()
        state = os.path.join(self.tmp, "lighttpd%d" % i)
        os.makedirs(state)
        tmpl = open(os.path.join(TOP_SRCDIR, "deploy", "lighttpd", "chatgw.conf.in")).read()
        conf = (tmpl.replace("@BIND@", "127.0.0.1").replace("@PORT@", str(port))
                .replace("@WWW@", self.www).replace("@STATE@", state)
                .replace("@PREFIX@", "/api").replace("@SOCKET@", self.socket))
        # Many held polls: one client connection each, and one FastCGI connection.
        conf = conf.replace("server.max-connections = 4096",
                            "server.max-connections = %d" % self.max_conns)
        conf = conf.replace("server.max-fds         = 8192",
                            "server.max-fds         = %d" % self.max_fds)
        conf += ('\nfastcgi.server += ( "/hello" => (( "socket" => "%s", '
                 '"check-local" => "disable" )) )\n' % self.hello_socket)
        # The floors stream as /api/ does (server.stream-response-body = 2).
        conf += ('fastcgi.server += ( "/floor" => (( "socket" => "%s", '
                 '"check-local" => "disable" )) )\n'
                 '$HTTP["url"] =^ "/floor/" {\n    server.stream-response-body = 2\n}\n'
                 % self.floor_socket)
        self.lighttpd_conf = conf
        path = os.path.join(state, "lighttpd.conf")
        with open(path, "w") as f:
            f.write(conf)
        name = "lighttpd" if i == 0 else "lighttpd%d" % i
        self._spawn(name, [self.lighttpd_bin, "-D", "-f", path])

        def up():
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                return self.procs[name].poll() is not None
        wait_for(up, what="lighttpd")
        if self.procs[name].poll() is not None:
            raise RuntimeError("lighttpd exited: " + self.log(name))
        return port

    def sessions(self, token, n):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        ids = []
        for _ in range(n):
            body = json.dumps({"provider": "claude",
                               "projectPath": os.path.join(self.projects, "demo")})
            c.request("POST", "/api/sessions", body=body,
                      headers={"Authorization": "Bearer " + token,
                               "Content-Type": "application/json"})
            r = c.getresponse()
            ids.append(json.loads(r.read())["session"]["id"])
        c.close()
        return ids


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def redis_cmd(port, *args):
    """One command, RESP encoded; returns str, int, None or a list (no nesting)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), 1)
    except OSError:
        return None
    try:
        req = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a.encode()), a) for a in args)
        s.sendall(req.encode())
        f = s.makefile("rb")
        line = f.readline().decode().rstrip("\r\n")
        if line[0] in "+-":
            return line[1:]
        if line[0] == ":":
            return int(line[1:])
        if line[0] == "$":
            n = int(line[1:])
            return None if n < 0 else f.read(n + 2)[:-2].decode()
        return line
    finally:
        s.close()


class RedisConn:
    """A kept connection for polling one key quickly."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), 5)
        self.f = self.s.makefile("rb")

    def get_int(self, key):
        self.s.sendall(("*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)).encode())
        line = self.f.readline()
        n = int(line[1:])
        if n < 0:
            return 0
        return int(self.f.read(n + 2)[:-2])

    def close(self):
        self.s.close()


# ---- process figures ------------------------------------------------------------------
def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return {"threads": int(out["Threads"]), "rss_kib": int(out["VmRSS"].split()[0]),
            "fds": len(os.listdir("/proc/%d/fd" % pid))}


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_conns_of(pid, redis_port):
    """TCP connections of process pid to the Redis port (established)."""
    inodes = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if int(p[2].rsplit(":", 1)[1], 16) == redis_port and p[3] == "01":
                        inodes.add(p[9])
        except OSError:
            pass
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            n += 1
    return n


# ---- helpers over HTTP ----------------------------------------------------------------
class Api:
    def __init__(self, st, token):
        self.st, self.token = st, token
        self.c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=120)

    def post(self, path, body):
        for attempt in (1, 2):
            try:
                self.c.request("POST", "/api" + path, body=json.dumps(body),
                               headers={"Authorization": "Bearer " + self.token,
                                        "Content-Type": "application/json"})
                r = self.c.getresponse()
                data = r.read()
                return r.status, json.loads(data) if data else None
            except (http.client.RemoteDisconnected, ConnectionError):
                # lighttpd closed the idle keep-alive connection: once more on a new one
                self.c.close()
                if attempt == 2:
                    raise

    def subscribed(self, sid):
        """The chat_subscribed ack of sid: lastSeq and isProcessing."""
        _, o = self.post("/chat/subscribe", {"sessions": [{"sessionId": sid}], "waitMs": 0})
        return o["frames"][0]


def start_load_hold(st, token, sids, n):
    path = os.path.join(st.tmp, "sessions.txt")
    with open(path, "w") as f:
        f.write("\n".join(sids) + "\n")
    ports = ",".join(str(p) for p in st.ports)
    p = subprocess.Popen([os.path.join(BENCH, "load"), "hold", ports, token, path, str(n),
                          str(WAIT_MS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError("load hold: " + line)
    return p


def wait_held(st, base_fds, n):
    """Until chatgw.fcgi holds n more connections than at rest (each parked request keeps
    its FastCGI connection), and its memory has settled."""
    pid = st.procs["fcgi"].pid
    wait_for(lambda: proc_status(pid)["fds"] >= base_fds + n, timeout=120, what="%d held polls" % n)
    time.sleep(1.0)


def hold_run(st, token, n, path, rate, secs):
    """n held polls over SESSIONS sessions; rate events/s for secs seconds through path
    ("bus": bench-pub straight into the bus; "runner": one run of fast-claude per session,
    started by /chat/send). Returns the figures."""
    pid = st.procs["fcgi"].pid
    n_sess = min(SESSIONS, n)
    sids = st.sessions(token, n_sess)
    base = proc_status(pid)
    load = start_load_hold(st, token, sids, n)
    wait_held(st, base["fds"], n)
    held = proc_status(pid)
    out = {"path": path, "polls": n, "sessions": n_sess, "rate": rate, "seconds": secs,
           "threads": held["threads"], "rss_kib": held["rss_kib"],
           "rss_rest_kib": base["rss_kib"],
           "rss_per_poll_kib": round((held["rss_kib"] - base["rss_kib"]) / n, 2),
           "redis_conns": redis_conns_of(pid, st.redis_port),
           "redis_clients_total": int(_info(st.redis_port, "connected_clients")),
           "web_servers": st.web_servers}
    cpu0 = {k: proc_cpu_s(st.procs[k].pid) for k in ("fcgi", "lighttpd", "redis")}
    for i in range(1, st.web_servers):
        cpu0["lighttpd%d" % i] = proc_cpu_s(st.procs["lighttpd%d" % i].pid)
    t0 = time.monotonic()
    if path == "bus":
        r = subprocess.run([os.path.join(BENCH, "bench-pub"), "-c", st.config, "rate", str(rate),
                            str(secs)] + sids, capture_output=True, text=True, check=True)
        pub = json.loads(r.stdout)
        final = pub["final"]
        out["publish_us_p50"] = pub.get("publish_us_p50")
        out["publish_us_p99"] = pub.get("publish_us_p99")
    else:
        api = Api(st, token)
        per = rate / n_sess
        k = max(1, int(per * secs))
        for sid in sids:
            code, o = api.post("/chat/send", {"sessionId": sid,
                                              "content": "bench n=%d rate=%g" % (k, per)})
            if code != 202:
                raise RuntimeError("send: %s %s" % (code, o))
        time.sleep(secs)
        final = {}
        deadline = time.monotonic() + 60
        for sid in sids:
            while True:
                a = api.subscribed(sid)
                if not a["isProcessing"] or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            final[sid] = a["lastSeq"]
    elapsed = time.monotonic() - t0
    out["busy_cpu_pct"] = {k: round(100 * (proc_cpu_s(st.procs[k].pid) - v) / elapsed, 1)
                           for k, v in cpu0.items()}
    load.stdin.write("final " + json.dumps(final) + "\n")
    load.stdin.flush()
    res = json.loads(load.stdout.readline())
    load.wait()
    out["threads_after"] = proc_status(pid)["threads"]
    out.update({k: res[k] for k in ("delivered", "bench_events", "lost", "duplicated", "errors",
                                    "p50_ms", "p99_ms", "max_ms", "status")})
    out["events_per_s"] = round(res["delivered"] / max(elapsed, 1e-9), 1)
    out["client_cpu_pct"] = round(100 * res["client_cpu_s"] / max(res["client_wall_s"], 1e-9), 1)
    return out


def _info(port, key):
    s = redis_cmd(port, "INFO", "clients") or ""
    for line in s.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1]
    return "0"


def rate_run(st, token, method, path, bodies, conns=RATE_CONNS, secs=RATE_SECS):
    f = os.path.join(st.tmp, "bodies.txt")
    if bodies:
        with open(f, "w") as fh:
            fh.write("\n".join(bodies) + "\n")
    r = subprocess.run([os.path.join(BENCH, "load"), "rate", str(st.port), token, method, path,
                        f if bodies else "-", str(conns), str(secs)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def request_rates(st, token):
    sids = st.sessions(token, 200)
    hello = rate_run(st, token, "GET", "/hello/", None)
    sub_bodies = [json.dumps({"sessions": [{"sessionId": s, "lastSeq": 0}], "waitMs": 0})
                  for s in sids]
    sub = rate_run(st, token, "POST", "/api/chat/subscribe", sub_bodies)
    send_bodies = [json.dumps({"sessionId": s, "content": "bench n=1"}) for s in sids]
    send = rate_run(st, token, "POST", "/api/chat/send", send_bodies)
    ok = lambda r, code: r["status"].get(code, 0) / r["seconds"]  # noqa: E731
    out = {"hello_per_s": round(ok(hello, "200"), 1),
           "subscribe_per_s": round(ok(sub, "200"), 1),
           "send_202_per_s": round(ok(send, "202"), 1),
           "send_all_per_s": round(send["per_s"], 1),
           "send_status": send["status"],
           "hello_p99_ms": hello["p99_ms"], "subscribe_p99_ms": sub["p99_ms"],
           "client_cpu_pct": round(100 * hello["client_cpu_s"] / hello["seconds"], 1)}
    out["subscribe_ratio"] = round(out["subscribe_per_s"] / out["hello_per_s"], 3)
    out["send_ratio"] = round(out["send_all_per_s"] / out["hello_per_s"], 3)
    # Let the runners of the send run finish before anything else is measured.
    api = Api(st, token)
    deadline = time.monotonic() + 60
    for sid in sids:
        while api.subscribed(sid)["isProcessing"] and time.monotonic() < deadline:
            time.sleep(0.05)
    return out


def first_event(st, token, sends=FIRST_EVENT_SENDS):
    """send -> first runner event (through subscribe), with a provider that answers at once."""
    sid = st.sessions(token, 1)[0]
    api, sub = Api(st, token), Api(st, token)
    lat, text_lat = [], []
    for _ in range(sends):
        code, o = api.post("/chat/send", {"sessionId": sid, "content": "bench n=1"})
        t_ret = time.monotonic()
        if code != 202:
            raise RuntimeError("send: %s %s" % (code, o))
        # fcgi publishes run_started and the prompt before it answers; the runner's own
        # events come after those two.
        cursor, first, done = o["lastSeq"] + 2, None, False
        while not done:
            _, a = sub.post("/chat/subscribe", {"sessions": [{"sessionId": sid, "lastSeq": cursor}],
                                                "waitMs": 10000})
            now = time.monotonic()
            for f in a["frames"]:
                if "seq" not in f:
                    continue
                cursor = max(cursor, f["seq"])
                if first is None:
                    first = now - t_ret
                    lat.append(first)
                if f.get("kind") == "text" and str(f.get("content", "")).startswith("bench:"):
                    text_lat.append(now - t_ret)
                if f.get("kind") == "complete":
                    done = True
    lat.sort()
    text_lat.sort()
    ms = lambda v: round(v * 1000, 2)  # noqa: E731
    return {"sends": sends, "first_event_p50_ms": ms(lat[len(lat) // 2]),
            "first_event_max_ms": ms(lat[-1]),
            "first_text_p50_ms": ms(text_lat[len(text_lat) // 2]) if text_lat else None}


def runner_rate(st, token, n=RUNNER_EVENTS):
    """Events/s one runner publishes (Redis + the store's batches): fast-claude prints n
    messages at once; the session's seq counter in Redis is watched."""
    sid = st.sessions(token, 1)[0]
    api = Api(st, token)
    rc = RedisConn(st.redis_port)
    key = "cgw:{%s}:seq" % sid
    code, o = api.post("/chat/send", {"sessionId": sid, "content": "bench n=%d rate=0" % n})
    base = o["lastSeq"] + 2
    first_at = last_at = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seq = rc.get_int(key)
        now = time.monotonic()
        if first_at is None and seq > base + 1:  # system/init's event, then the texts
            first_at, first_seq = now, seq
        if seq >= base + n:
            last_at, last_seq = now, seq
            break
        time.sleep(0.0005)
    rc.close()
    while api.subscribed(sid)["isProcessing"]:
        time.sleep(0.05)
    out = {"events": n}
    if first_at and last_at and last_at > first_at:
        out["runner_events_per_s"] = round((last_seq - first_seq) / (last_at - first_at), 1)
    # The bus alone, one publisher, the same events: what the runner adds is the rest.
    bsid = st.sessions(token, 1)[0]
    r = subprocess.run([os.path.join(BENCH, "bench-pub"), "-c", st.config, "burst", str(n), bsid],
                       capture_output=True, text=True, check=True)
    pub = json.loads(r.stdout)
    out["bus_events_per_s"] = round(pub["events_per_s"], 1)
    out["bus_publish_us_p50"] = pub["publish_us_p50"]
    return out


def rate_for(n):
    """Events/s for n held polls: RATE, but at most RATE * 1000 / n, so that the
    answers per second (events x polls per session) stay those of the 1 000-poll run:
    the big runs measure holding, not a flood of answers (BENCH_RATE_FIXED=1: RATE always)."""
    if os.environ.get("BENCH_RATE_FIXED") == "1" or n <= 1000:
        return RATE
    return max(1, RATE * 1000 // n)


# ---- one run ----------------------------------------------------------------------------
def one_run(ns, fsync, threads, paths, parts):
    res = {"hold": []}
    for n in ns:
        for path in paths:
            with BenchStack(fsync, threads, polls=n) as st:
                token = st.user("bench")
                log("hold: %d polls, events via %s" % (n, path))
                res["hold"].append(hold_run(st, token, n, path, rate_for(n), HOLD_SECS))
    if "compare" in parts:
        with BenchStack(fsync, threads, polls=max(compare.COMPARE_N)) as st:
            token = st.user("bench")
            rows, rates = compare.chatgw_rows(BENCH, st, token, rate_run, log)
        res["compare"] = {"chatgw": rows, "rates": rates}
        why = compare.nchan_missing()
        if why:
            log("skipping the nchan rows: " + why)
        else:
            res["compare"]["nchan"] = compare.nchan_rows(
                BENCH, shutil.which("redis-server") or "redis-server", fsync,
                min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536), log)
    if not set(parts) & {"rates", "first", "runner", "fsync"}:
        return res
    with BenchStack(fsync, threads) as st:
        token = st.user("bench")
        if "rates" in parts:
            log("request rates")
            res["rates"] = request_rates(st, token)
        if "first" in parts:
            log("send -> first event")
            res["first"] = first_event(st, token)
        if "runner" in parts:
            log("runner events/s")
            res["runner"] = runner_rate(st, token)
    if "fsync" in parts:
        log("Redis fsync policies")
        res["fsync"] = {}
        for policy in ("always", "everysec"):
            with BenchStack(policy, threads) as st:
                token = st.user("bench")
                sid = st.sessions(token, 1)[0]
                r = subprocess.run([os.path.join(BENCH, "bench-pub"), "-c", st.config, "burst",
                                    "5000", sid], capture_output=True, text=True, check=True)
                pub = json.loads(r.stdout)
                res["fsync"][policy + "_events_per_s"] = round(pub["events_per_s"], 1)
                res["fsync"][policy + "_publish_us_p50"] = pub["publish_us_p50"]
    return res


def median_of(runs, get):
    vals = [v for v in (get(r) for r in runs) if v is not None]
    if not vals:
        return None
    return statistics.median(vals)


def summarize(runs, ns):
    s = {"hold": []}
    for i, h in enumerate(runs[0]["hold"] if ns else []):
        row = {"path": h["path"], "polls": h["polls"], "sessions": h["sessions"]}
        for k, v in h.items():
            if isinstance(v, (int, float)) and k not in row:
                row[k] = median_of(runs, lambda r: r["hold"][i][k])
        row["lost"] = max(r["hold"][i]["lost"] for r in runs)          # worst, not median
        row["duplicated"] = max(r["hold"][i]["duplicated"] for r in runs)
        row["threads"] = max(r["hold"][i]["threads"] for r in runs)
        s["hold"].append(row)
    if "compare" in runs[0]:
        c0 = runs[0]["compare"]
        s["compare"] = {"rates": {k: median_of(runs, lambda r: r["compare"]["rates"][k])
                                  for k in c0["rates"]}}
        for side in ("chatgw", "nchan"):
            if side not in c0:
                continue
            s["compare"][side] = []
            for i, row in enumerate(c0[side]):
                m = {}
                for k, v in row.items():
                    if isinstance(v, dict):  # cpu_us_by_process: each process's median
                        m[k] = {p: median_of(runs, lambda r: r["compare"][side][i][k].get(p))
                                for p in v}
                    elif isinstance(v, (int, float)):
                        m[k] = median_of(runs, lambda r: r["compare"][side][i][k])
                    else:
                        m[k] = v
                for k in ("lost", "duplicated", "errors"):  # worst, not median
                    m[k] = max(r["compare"][side][i][k] for r in runs)
                s["compare"][side].append(m)
    for part in ("rates", "first", "runner", "fsync"):
        if part not in runs[0]:
            continue
        s[part] = {k: median_of(runs, lambda r: r[part][k]) for k, v in runs[0][part].items()
                   if isinstance(v, (int, float))}
    return s


def compare_table(c):
    """The issue-13 table: chatgw beside nchan, with the ratio chatgw / nchan."""
    lines = ["chatgw (lighttpd + chatgw.fcgi) vs nginx + nchan (Redis store), one session, "
             "%d events at %d/s, the same client (tests/bench/load)" % (
                 compare.EVENTS, compare.EVENT_RATE)]
    cg = {(r["mode"], r["subscribers"]): r for r in c["chatgw"]}
    nc = {(r["mode"], r["subscribers"]): r for r in c.get("nchan", [])}
    lines.append("%-58s %14s %14s %6s" % ("", "chatgw", "nchan", "ratio"))

    def row(label, a, b, fmt="%.2f"):
        fa = (fmt % a) if a is not None else "-"
        fb = (fmt % b) if b is not None else ("-" if nc else "(skipped)")
        ratio = "%.2f" % (a / b) if a is not None and b else "-"
        lines.append("%-58s %14s %14s %6s" % (label, fa, fb, ratio))

    def get(d, key, field):
        r = d.get(key)
        return r[field] if r else None
    big = max(compare.COMPARE_N)
    for n in sorted(compare.COMPARE_N):
        row("long-poll delivery p99 ms, %d subscriber%s" % (n, "s" if n > 1 else ""),
            get(cg, ("hold", n), "p99_ms"), get(nc, ("nchan", n), "p99_ms"))
    row("long-poll CPU us/delivery at %d (web server + app)" % big,
        get(cg, ("hold", big), "cpu_us_per_delivery"),
        get(nc, ("nchan", big), "cpu_us_per_delivery"), "%.1f")
    row("  + Redis CPU us/delivery", get(cg, ("hold", big), "redis_cpu_us_per_delivery"),
        get(nc, ("nchan", big), "redis_cpu_us_per_delivery"), "%.1f")
    row("KiB per parked subscriber at %d (web server + app)" % big,
        get(cg, ("hold", big), "kib_per_sub"), get(nc, ("nchan", big), "kib_per_sub"))
    row("  fds per parked subscriber", get(cg, ("hold", big), "fds_per_sub"),
        get(nc, ("nchan", big), "fds_per_sub"))
    row("stream (chatgw SSE / nchan long-poll) p99 ms, %d subs" % big,
        get(cg, ("stream", big), "p99_ms"), get(nc, ("nchan", big), "p99_ms"))
    row("stream CPU us/delivery (vs nchan long-poll)",
        get(cg, ("stream", big), "cpu_us_per_delivery"),
        get(nc, ("nchan", big), "cpu_us_per_delivery"), "%.1f")
    row("stream p99 ms vs nchan's EventSource, %d subs" % big,
        get(cg, ("stream", big), "p99_ms"), get(nc, ("nchan-sse", big), "p99_ms"))
    row("stream CPU us/delivery vs nchan's EventSource",
        get(cg, ("stream", big), "cpu_us_per_delivery"),
        get(nc, ("nchan-sse", big), "cpu_us_per_delivery"), "%.1f")
    # The floors: lighttpd + a libfcgi program that only delivers (tests/bench/fcgi-floor).
    row("long-poll floor (lighttpd + libfcgi, no work) p99 ms, %d" % big,
        get(cg, ("hold-floor", big), "p99_ms"), get(nc, ("nchan", big), "p99_ms"))
    row("long-poll floor CPU us/delivery",
        get(cg, ("hold-floor", big), "cpu_us_per_delivery"),
        get(nc, ("nchan", big), "cpu_us_per_delivery"), "%.1f")
    row("long-poll floor KiB per parked subscriber",
        get(cg, ("hold-floor", big), "kib_per_sub"), get(nc, ("nchan", big), "kib_per_sub"))
    row("stream floor (lighttpd + libfcgi streamer, no work) p99 ms",
        get(cg, ("stream-floor", big), "p99_ms"), get(nc, ("nchan", big), "p99_ms"))
    row("stream floor CPU us/delivery (vs nchan long-poll)",
        get(cg, ("stream-floor", big), "cpu_us_per_delivery"),
        get(nc, ("nchan", big), "cpu_us_per_delivery"), "%.1f")
    lines.append("CPU us/delivery by process at %d (web server's share):" % big)
    for label, d, key in (("chatgw long-poll", cg, ("hold", big)),
                          ("chatgw stream", cg, ("stream", big)),
                          ("long-poll floor", cg, ("hold-floor", big)),
                          ("stream floor", cg, ("stream-floor", big)),
                          ("nchan long-poll", nc, ("nchan", big)),
                          ("nchan EventSource", nc, ("nchan-sse", big))):
        by = {p: v for p, v in (get(d, key, "cpu_us_by_process") or {}).items()
              if v is not None}
        if not by:
            continue
        web = sum(v for p, v in by.items() if p.startswith(("lighttpd", "nginx")))
        total = sum(by.values())
        lines.append("  %-18s %s (%s)" % (
            label, " + ".join("%s %.1f" % (p, v) for p, v in by.items()),
            "%.0f %%" % (100 * web / total) if total else "-"))
    for what, mode in (("long-poll", "hold"), ("stream", "stream")):
        a = get(cg, (mode, big), "cpu_us_per_delivery")
        b = get(cg, (mode + "-floor", big), "cpu_us_per_delivery")
        pa = get(cg, (mode, big), "p99_ms")
        pb = get(cg, (mode + "-floor", big), "p99_ms")
        if a is not None and b and pa is not None and pb:
            lines.append("chatgw %s / its floor's at %d: CPU %.2f, p99 %.2f" % (
                what, big, a / b, pa / pb))
    r = c["rates"]
    for conns in (32, 1):
        lines.append("no-wait subscribe vs FastCGI hello-world, %2d connection%s: %.0f/s vs "
                     "%.0f/s = %.2f  (CPU us/request: lighttpd %.1f, chatgw.fcgi %.1f, Redis "
                     "%.1f; hello: lighttpd %.1f, hello %.1f)" % (
                         conns, "s" if conns > 1 else " ", r["subscribe_%d_per_s" % conns],
                         r["hello_%d_per_s" % conns], r["ratio_%d" % conns],
                         r["subscribe_%d_cpu_us_lighttpd" % conns],
                         r["subscribe_%d_cpu_us_fcgi" % conns],
                         r["subscribe_%d_cpu_us_redis" % conns],
                         r["hello_%d_cpu_us_lighttpd" % conns],
                         r["hello_%d_cpu_us_hello" % conns]))
    worst = [(side, x["mode"], x["subscribers"], x["lost"], x["duplicated"], x["errors"])
             for side in ("chatgw", "nchan") for x in c.get(side, [])
             if x["lost"] or x["duplicated"] or x["errors"]]
    lines.append("lost/duplicated/errors: " + (
        "0 everywhere" if not worst else "; ".join("%s %s %d: %d/%d/%d" % w for w in worst)))
    return "\n".join(lines)


def table(s):
    lines = []
    if "compare" in s:
        lines.append(compare_table(s["compare"]))
        lines.append("")
    if s["hold"]:
        hold_table(s, lines)
    r = s.get("rates")
    if r:
        lines.append("requests/s (%d connections, closed loop): hello-world %.0f, no-wait subscribe "
                 "%.0f (%.0f %%), send %.0f (%.0f %%; 202 only: %.0f/s)" % (
                     RATE_CONNS, r["hello_per_s"], r["subscribe_per_s"],
                     100 * r["subscribe_ratio"], r["send_all_per_s"], 100 * r["send_ratio"],
                     r["send_202_per_s"]))
    f = s.get("first")
    if f:
        lines.append("send -> first event: p50 %.2f ms, max %.2f ms (first model text p50 %s ms)" % (
        f["first_event_p50_ms"], f["first_event_max_ms"], f.get("first_text_p50_ms")))
    fs = s.get("fsync")
    if fs:
        lines.append("bus alone, one publisher, Redis appendfsync always: %s events/s "
                     "(everysec: %s)" % (fs.get("always_events_per_s"),
                                         fs.get("everysec_events_per_s")))
    u = s.get("runner")
    if u:
        lines.append("one runner: %s events/s (Redis + %s); bus alone, one publisher: %s events/s"
                 % (u.get("runner_events_per_s"), store_name(), u.get("bus_events_per_s")))
    return "\n".join(lines)


def hold_table(s, lines):
    lines.append("events/s published: %s (per row below: %s)" % (
        RATE, ", ".join("%d polls: %d" % (h["polls"], h["rate"]) for h in s["hold"]
                        if h["path"] == s["hold"][0]["path"])))
    lines.append("%-7s %6s %5s %8s %8s %8s %8s %5s %5s %4s %7s %9s %6s" % (
        "path", "polls", "sess", "p50 ms", "p99 ms", "max ms", "deliv/s", "lost", "dup", "thr",
        "RSS MiB", "KiB/poll", "redis"))
    for h in s["hold"]:
        lines.append("%-7s %6d %5d %8.2f %8.2f %8.2f %8.0f %5d %5d %4d %7.1f %9.2f %6d" % (
            h["path"], h["polls"], h["sessions"], h["p50_ms"] or -1, h["p99_ms"] or -1,
            h["max_ms"] or -1, h["events_per_s"], h["lost"], h["duplicated"], h["threads"],
            h["rss_kib"] / 1024, h["rss_per_poll_kib"], h["redis_conns"]))
    lines.append("")


def store_name():
    """The store the stacks use: CHATGW_TEST_STORE=postgres (with CHATGW_TEST_PG_URL) as in
    make check-postgres, else SQLite."""
    return "PostgreSQL" if os.environ.get("CHATGW_TEST_STORE") == "postgres" else "SQLite"


def setup_info(args, threads):
    def ver(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return None
    cpu = None
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "mem_total_kib": int(open("/proc/meminfo").readline().split()[1]),
            "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
            "redis": ver([shutil.which("redis-server") or "redis-server", "--version"]),
            "lighttpd": ver([shutil.which("lighttpd") or "/usr/sbin/lighttpd", "-v"]),
            "nginx": (subprocess.run([compare.nginx_bin(), "-v"], capture_output=True,
                                     text=True).stderr.strip() if compare.nginx_bin() else None),
            "nchan_module": compare.nchan_module(),
            "compare": {"events": compare.EVENTS, "event_rate": compare.EVENT_RATE,
                        "subscribers": list(compare.COMPARE_N)},
            "sanitizers": os.environ.get("BENCH_SAN", "").strip(),
            "store": store_name(),
            "fcgi_threads": threads, "hello_threads": threads,
            "redis_appendfsync": args.fsync, "sessions": SESSIONS, "rate_events_per_s": RATE,
            "hold_seconds": HOLD_SECS, "wait_ms": WAIT_MS, "rate_conns": RATE_CONNS,
            "rate_seconds": RATE_SECS, "first_event_sends": FIRST_EVENT_SENDS,
            "runner_events": RUNNER_EVENTS, "polls": args.n, "runs": args.runs,
            "lighttpd_config": "deploy/lighttpd/chatgw.conf.in with server.max-connections and "
                               "server.max-fds raised (see web_servers, max_fds)",
            "max_fds": min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536),
            "chatgw_config": {"fcgi.threads": threads, "log.level": "warn",
                              "limits.max_polls_per_user": 1000000, "limits.max_polls": 1000000,
                              "limits.max_runs_per_user": 100000, "stream.maxlen": 1000000}}


def main():
    global SESSIONS, RATE, HOLD_SECS
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default=os.environ.get("BENCH_N", "100 1000 10000"))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--fsync", default=os.environ.get("BENCH_FSYNC", "everysec"))
    ap.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "8")))
    ap.add_argument("--rate", type=int, default=int(os.environ.get("BENCH_RATE", str(RATE))))
    ap.add_argument("--secs", type=int, default=int(os.environ.get("BENCH_SECS", str(HOLD_SECS))))
    ap.add_argument("--paths", default=os.environ.get("BENCH_PATHS", "bus runner"),
                    help="how events are published in the hold runs")
    ap.add_argument("--parts", default=os.environ.get("BENCH_PARTS", "compare rates first runner fsync"),
                    help="the other measurements")
    ap.add_argument("--json", default="bench-results.json")
    args = ap.parse_args()
    RATE, HOLD_SECS = args.rate, args.secs
    ns = [int(x) for x in args.n.split()]
    if "compare" in args.parts.split():
        ns_max = max(ns + [max(compare.COMPARE_N)])
    else:
        ns_max = max(ns + [0])
    for p in ("load", "bench-pub", "fast-claude", "hello", "fcgi-floor"):
        if not os.access(os.path.join(BENCH, p), os.X_OK):
            sys.exit("bench: %s is not built (run make bench)" % os.path.join(BENCH, p))
    want = ns_max * 3 + 4096
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            log("open files limited to %d (the hard limit): lighttpd is split as needed" % hard)
    if os.environ.get("BENCH_SAN", "").strip():
        log("warning: this build has sanitizers (%s): figures are not representative; "
            "configure a separate build without --enable-sanitizers" % os.environ["BENCH_SAN"])
    runs = []
    for i in range(args.runs):
        log("run %d of %d" % (i + 1, args.runs))
        runs.append(one_run(ns, args.fsync, args.threads, args.paths.split(),
                            args.parts.split()))
    s = summarize(runs, ns)
    print(table(s))
    with open(args.json, "w") as f:
        json.dump({"setup": setup_info(args, args.threads), "median": s, "runs": runs}, f,
                  indent=1)
    print("\n(medians of %d runs; every figure and the setup: %s)" % (args.runs, args.json))


if __name__ == "__main__":
    main()
