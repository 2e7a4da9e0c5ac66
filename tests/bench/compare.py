"""compare.py: make bench's side-by-side part (issue 13): chatgw (lighttpd + chatgw.fcgi)
and nginx + nchan (Debian's libnginx-mod-nchan, Redis store) with the same client
(tests/bench/load) and the same shape: one session (one nchan channel), N subscribers on
it, EVENTS events at EVENT_RATE/s, for N in COMPARE_N. Also the streaming subscribe
(GET /chat/stream), the floors of both (tests/bench/fcgi-floor: lighttpd + libfcgi
delivering the same events with no work) and nchan's EventSource at the largest N, and the no-wait
subscribe against the FastCGI hello-world at 32 and 1 connections. Every streaming and
long-poll row has its CPU per delivery split by process. See tests/bench/README.md."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import http.client

from stack import TOP_SRCDIR, wait_for  # noqa: F401  (TOP_SRCDIR for callers)

EVENTS = 20            # events published per measurement
EVENT_RATE = 2         # events/s
COMPARE_N = (1000, 100, 1)  # largest first: its memory figure comes from a fresh process
NCHAN_MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/lib64/nginx/modules",
                     "/usr/share/nginx/modules")


def nchan_missing():
    """Why nginx + nchan cannot run here, or None."""
    if not nginx_bin():
        return "nginx not installed (Debian: nginx-light)"
    if not nchan_module():
        return "nchan module not installed (Debian: libnginx-mod-nchan)"
    return None


def nginx_bin():
    for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin"]:
        p = os.path.join(d, "nginx")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def nchan_module():
    for d in NCHAN_MODULE_DIRS:
        p = os.path.join(d, "ngx_nchan_module.so")
        if os.path.exists(p):
            return p
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


class NchanStack:
    """redis-server (as the bench's: AOF, appendfsync everysec, TCP) and nginx with
    nchan (one worker, its own config, pid and logs in a temp dir, a free loopback port),
    both ended by pid. Locations: /sub/<id> long-poll, /ev/<id> EventSource, /pub/<id>
    publisher (also the channel's info: subscriber count)."""

    def __init__(self, redis_bin, fsync="everysec", max_fds=20000):
        self.tmp = tempfile.mkdtemp(prefix="cgw-nchan-")
        self.procs = {}
        self.redis_bin, self.fsync = redis_bin, fsync
        self.max_conns = max(1024, max_fds - 256)

    def _spawn(self, name, argv):
        log = open(os.path.join(self.tmp, name + ".log"), "ab")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.tmp)

    def __enter__(self):
        try:
            self.redis_port = free_port()
            d = os.path.join(self.tmp, "redis")
            os.makedirs(d)
            self._spawn("redis", [self.redis_bin, "--port", str(self.redis_port), "--bind",
                                  "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "yes",
                                  "--appendfsync", self.fsync, "--daemonize", "no",
                                  "--maxclients", "10000"])
            wait_for(lambda: _up(self.redis_port), what="redis-server (nchan)")
            self.port = free_port()
            t = self.tmp
            user = "user root root;\n" if os.geteuid() == 0 else ""
            conf = """load_module %(mod)s;
%(user)sworker_processes 1;
worker_rlimit_nofile %(fds)d;
pid %(t)s/nginx.pid;
error_log %(t)s/error.log warn;
events { worker_connections %(conns)d; }
http {
  access_log off;
  client_body_temp_path %(t)s/body;
  proxy_temp_path %(t)s/proxy;
  fastcgi_temp_path %(t)s/fastcgi;
  uwsgi_temp_path %(t)s/uwsgi;
  scgi_temp_path %(t)s/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream redis_store { nchan_redis_server "redis://127.0.0.1:%(rp)d"; }
  server {
    listen 127.0.0.1:%(port)d backlog=4096;
    location ~ ^/sub/(\\w+)$ { nchan_subscriber longpoll; nchan_channel_id $1;
                              nchan_subscriber_first_message newest;
                              nchan_redis_pass redis_store; }
    location ~ ^/ev/(\\w+)$ { nchan_subscriber eventsource; nchan_channel_id $1;
                             nchan_subscriber_first_message newest;
                             nchan_redis_pass redis_store; }
    location ~ ^/pub/(\\w+)$ { nchan_publisher; nchan_channel_id $1;
                              nchan_redis_pass redis_store; }
  }
}
""" % {"mod": nchan_module(), "user": user, "t": t, "fds": self.max_conns + 256,
                "conns": self.max_conns, "rp": self.redis_port, "port": self.port}
            path = os.path.join(t, "nginx.conf")
            with open(path, "w") as f:
                f.write(conf)
            self._spawn("nginx", [nginx_bin(), "-c", path, "-p", t, "-g", "daemon off;"])
            wait_for(lambda: _up(self.port, http=True) or self.procs["nginx"].poll() is not None,
                     what="nginx")
            if self.procs["nginx"].poll() is not None:
                raise RuntimeError("nginx exited: " + _read(os.path.join(t, "nginx.log")) +
                                   _read(os.path.join(t, "error.log")))
            # The channel info answers once the worker talks to Redis.
            wait_for(lambda: self.channel_info("warmup") is not None, what="nchan + Redis")
        except Exception:
            self.close()
            raise
        return self

    def web_pids(self):
        """nginx's master and its worker, by name."""
        p = self.procs["nginx"].pid
        out = {"nginx-master": p}
        for i, c in enumerate(children(p)):
            out["nginx-worker" if i == 0 else "nginx-worker%d" % i] = c
        return out

    def publish(self, channel, body):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("POST", "/pub/" + channel, body=body)
        r = c.getresponse()
        r.read()
        c.close()
        if r.status not in (201, 202):
            raise RuntimeError("nchan publish: %d" % r.status)

    def channel_info(self, channel):
        """The channel's {"subscribers": n, "messages": n, ...}, or None."""
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            c.request("GET", "/pub/" + channel, headers={"Accept": "text/json"})
            r = c.getresponse()
            data = r.read()
            c.close()
        except OSError:
            return None
        if r.status == 404:  # no such channel yet (no message, no subscriber)
            return {"subscribers": 0, "messages": 0}
        try:
            return json.loads(data)
        except ValueError:
            return None

    def close(self):
        for name in ("nginx", "redis"):
            p = self.procs.pop(name, None)
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM if name == "redis" else signal.SIGQUIT)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __exit__(self, *exc):
        self.close()


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _up(port, http=False):
    try:
        s = socket.create_connection(("127.0.0.1", port), 0.2)
        if not http:
            s.sendall(b"PING\r\n")
            ok = s.recv(16).startswith(b"+PONG")
        else:
            ok = True
        s.close()
        return ok
    except OSError:
        return False


def start_load(bench, mode, ports, token, sid, n, tmp, env=None):
    path = os.path.join(tmp, "compare-sessions.txt")
    with open(path, "w") as f:
        f.write(sid + "\n")
    env = dict(os.environ, **(env or {}))
    p = subprocess.Popen([os.path.join(bench, "load"), mode, ",".join(str(x) for x in ports),
                          token or "-", path, str(n), "55000"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline()
    if line.strip() != "ready":
        p.kill()
        p.wait()
        raise RuntimeError("load %s: %r" % (mode, line))
    return p


def measure(bench, mode, n, ports, token, sid, tmp, web_pids, redis_pid, wait_held, publish,
            env=None, label=None):
    """N subscribers of one session/channel with load MODE; EVENTS events at EVENT_RATE/s
    through publish(i) (returns nothing; stamps the event just before it leaves); returns
    the figures: delivery latency, CPU per delivery (in all and per process of web_pids,
    {name: pid}: web server and app), memory and fds per subscriber. redis_pid None: no
    Redis in the path. env: more environment for load (LOAD_SUBSCRIBE_PATH,
    LOAD_STREAM_PATH); label: the row's mode (default MODE)."""
    rest_rss = sum(rss_kib(p) for p in web_pids.values())
    rest_fds = sum(nfds(p) for p in web_pids.values())
    load = start_load(bench, mode, ports, token, sid, n, tmp, env)
    wait_held(n)
    time.sleep(1.0)  # let memory settle
    held_rss = sum(rss_kib(p) for p in web_pids.values())
    held_fds = sum(nfds(p) for p in web_pids.values())
    cpu0 = {k: cpu_s(p) for k, p in web_pids.items()}
    rcpu0 = cpu_s(redis_pid) if redis_pid else 0.0
    t0 = time.monotonic()
    for i in range(EVENTS):
        due = t0 + i / EVENT_RATE
        d = due - time.monotonic()
        if d > 0:
            time.sleep(d)
        publish(i)
    final = publish(None)  # the final seq of the session
    load.stdin.write("final " + json.dumps({sid: final}) + "\n")
    load.stdin.flush()
    res = json.loads(load.stdout.readline())
    load.wait()
    by = {k: cpu_s(p) - cpu0[k] for k, p in web_pids.items()}
    cpu = sum(by.values())
    rcpu = cpu_s(redis_pid) - rcpu0 if redis_pid else None
    d = max(res["delivered"], 1)
    return {"mode": label or mode, "subscribers": n, "delivered": res["delivered"],
            "lost": res["lost"], "duplicated": res["duplicated"], "errors": res["errors"],
            "p50_ms": res["p50_ms"], "p99_ms": res["p99_ms"], "max_ms": res["max_ms"],
            "cpu_us_per_delivery": round(cpu * 1e6 / d, 1),
            "cpu_us_by_process": {k: round(v * 1e6 / d, 1) for k, v in by.items()},
            "redis_cpu_us_per_delivery": round(rcpu * 1e6 / d, 1) if redis_pid else None,
            "kib_per_sub": round((held_rss - rest_rss) / n, 2),
            "fds_per_sub": round((held_fds - rest_fds) / n, 2),
            "client_cpu_pct": round(100 * res["client_cpu_s"] / max(res["client_wall_s"], 1e-9), 1)}


def chatgw_rows(bench, st, token, rate_run, log):
    """The chatgw side: long-poll at every N, the stream and both floors at the largest,
    no-wait subscribe and hello-world at 32 and 1 connections (with CPU per request of
    each process)."""
    fcgi = st.procs["fcgi"].pid
    web = {"lighttpd": st.procs["lighttpd"].pid, "fcgi": fcgi}
    redis = st.procs["redis"].pid
    rows = []

    def publisher(sid):
        state = {"proc": None}

        def publish(i):
            if i == 0:  # bench-pub paces itself: EVENTS events at EVENT_RATE/s
                state["proc"] = subprocess.Popen(
                    [os.path.join(bench, "bench-pub"), "-c", st.config, "rate", str(EVENT_RATE),
                     str(EVENTS // EVENT_RATE), sid], stdout=subprocess.PIPE, text=True)
            if i is None:
                out, _ = state["proc"].communicate()
                return json.loads(out)["final"][sid]
        return publish

    for mode, ns in (("hold", COMPARE_N), ("stream", COMPARE_N[:1])):
        for n in ns:
            sid = st.sessions(token, 1)[0]
            log("compare: chatgw %s, %d subscribers" % (mode, n))
            base = nfds(fcgi)
            rows.append(measure(bench, mode, n, st.ports, token, sid, st.tmp, web, redis,
                                lambda k: wait_for(lambda: nfds(fcgi) >= base + k, timeout=120,
                                                   what="%d held" % k),
                                publisher(sid)))
    rows.extend(floor_rows(bench, st, token, log))
    # No-wait subscribe and the hello-world through the same lighttpd.
    sids = st.sessions(token, 200)
    bodies = [json.dumps({"sessions": [{"sessionId": s, "lastSeq": 0}], "waitMs": 0})
              for s in sids]
    hello_pid = st.procs["hello"].pid
    rates = {}
    lighttpd = web["lighttpd"]
    for conns in (32, 1):
        for name, method, path, b, pids in (
                ("hello", "GET", "/hello/", None, {"lighttpd": lighttpd, "hello": hello_pid}),
                ("subscribe", "POST", "/api/chat/subscribe", bodies,
                 {"lighttpd": lighttpd, "fcgi": fcgi, "redis": redis})):
            log("compare: %s at %d connections" % (name, conns))
            c0 = {k: cpu_s(p) for k, p in pids.items()}
            r = rate_run(st, token, method, path, b, conns=conns)
            ok = r["status"].get("200", 0)
            rates["%s_%d_per_s" % (name, conns)] = round(ok / r["seconds"], 1)
            for k, p in pids.items():
                rates["%s_%d_cpu_us_%s" % (name, conns, k)] = round(
                    (cpu_s(p) - c0[k]) * 1e6 / max(ok, 1), 1)
        rates["ratio_%d" % conns] = round(rates["subscribe_%d_per_s" % conns] /
                                          max(rates["hello_%d_per_s" % conns], 1), 3)
    return rows, rates


def floor_rows(bench, st, token, log):
    """The floors: the same load client at the largest N, long-poll ("hold") and stream,
    against tests/bench/fcgi-floor under /floor of the same lighttpd (libfcgi: long-polls
    held and answered, event streams held and written, nothing else); its events are
    datagrams with the next seq to its trigger socket, paced as the others. The session
    id is only echoed back in the frames."""
    n = max(COMPARE_N)
    pid = st.procs["floor"].pid
    web = {"lighttpd": st.procs["lighttpd"].pid, "fcgi-floor": pid}
    trigger = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sid = "00000000-0000-4000-8000-00000000f100"  # the length of a chatgw session id
    state = {"last": 0}  # the floor's last seq: every measurement continues it
    rows = []

    def publish(i):
        if i is None:
            return state["last"]
        state["last"] += 1
        trigger.sendto(str(state["last"]).encode(), st.floor_trigger)

    try:
        for mode, label, env in (("hold", "hold-floor", {"LOAD_SUBSCRIBE_PATH":
                                                         "/floor/subscribe"}),
                                 ("stream", "stream-floor", {"LOAD_STREAM_PATH":
                                                             "/floor/stream"})):
            log("compare: %s floor (lighttpd + libfcgi), %d subscribers" % (mode, n))
            base = nfds(pid)
            rows.append(measure(bench, mode, n, [st.port], token, sid, st.tmp, web, None,
                                lambda k: wait_for(lambda: nfds(pid) >= base + k, timeout=120,
                                                   what="%d held by fcgi-floor" % k),
                                publish, env=env, label=label))
            # What the client left held (its last polls, its streams) goes when a write
            # fails: a stream's only after lighttpd found its client gone at the write
            # before. So: unmeasured events, one every 0.25 s, until the floor is idle.
            last = [0.0]

            def idle(base=base):
                if nfds(pid) <= base + 8:
                    return True
                if time.monotonic() - last[0] >= 0.25:
                    publish(0)
                    last[0] = time.monotonic()
                return False
            wait_for(idle, timeout=60, what="fcgi-floor idle")
    finally:
        trigger.close()
    return rows


def nchan_rows(bench, redis_bin, fsync, max_fds, log):
    rows = []
    with NchanStack(redis_bin, fsync, max_fds) as ns:
        web = ns.web_pids()
        redis = ns.procs["redis"].pid
        k = 0
        for mode, nlist in (("nchan", COMPARE_N), ("nchan-sse", COMPARE_N[:1])):
            for n in nlist:
                k += 1
                ch = "bench%d" % k
                log("compare: nchan %s, %d subscribers" % (mode, n))

                def publish(i, ch=ch):
                    if i is None:
                        return EVENTS
                    ns.publish(ch, json.dumps({"seq": i + 1, "content": "bench:%d" % int(
                        time.time() * 1e6)}))

                def held(m, ch=ch):
                    wait_for(lambda: (ns.channel_info(ch) or {}).get("subscribers", 0) >= m,
                             timeout=120, what="%d nchan subscribers" % m)
                rows.append(measure(bench, mode, n, [ns.port], None, ch, ns.tmp, web, redis,
                                    held, publish))
    return rows
