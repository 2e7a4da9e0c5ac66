"""redis_ha.py: a Redis primary, its replicas and 3 Sentinels for integration tests.

RedisHA(tmp) starts, in tmp, a redis-server primary and `replicas` replicas on free
127.0.0.1 ports (no persistence: `--save ""`, no AOF, unless persist=True) and
`sentinels` Sentinels (`redis-server <conf> --sentinel`) monitoring it under
master_name with quorum 2. start() returns once every Sentinel sees the primary and
every replica is in sync. Every process it starts is ended by its own pid in close().

    with RedisHA(tmp) as ha:
        Stack(redis_port=ha.primary_port,
              extra_config={"redis.sentinels": ha.sentinels,
                            "redis.master_name": ha.master_name})
        ha.failover()              # SENTINEL FAILOVER, waits for the new primary
        ha.kill_primary()          # SIGKILL of the current primary
        ha.wait_new_primary(old)   # until the Sentinels name another primary

Waits are bounded by stack.LIMIT and wait on states (INFO, SENTINEL replies), never
on time.
"""
import os
import signal
import subprocess

from stack import LIMIT, free_port, redis_command, wait_for, which


class RedisHA:
    def __init__(self, tmp, replicas=1, sentinels=3, master_name="chatgw", persist=False,
                 down_after_ms=1000, failover_timeout_ms=5000, min_replicas_to_write=0):
        self.tmp = os.path.join(tmp, "redis-ha")
        os.makedirs(self.tmp, exist_ok=True)
        self.n_replicas = replicas
        self.n_sentinels = sentinels
        self.master_name = master_name
        self.persist = persist
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        # > 0: every node refuses writes (NOREPLICAS) with fewer replicas in sync, so a
        # primary that a failover left behind takes no writes that would be lost.
        self.min_replicas_to_write = min_replicas_to_write
        self.redis_bin = os.environ.get("REDIS_SERVER") or which("redis-server")
        self.procs = {}  # port -> Popen, data nodes and Sentinels alike
        self.primary_port = None
        self.replica_ports = []
        self.sentinel_ports = []
        self.sentinels = ""

    # ---- processes --------------------------------------------------------
    def _spawn(self, name, port, argv):
        log = open(os.path.join(self.tmp, "%s-%d.log" % (name, port)), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, cwd=self.tmp)
        log.close()
        self.procs[port] = p
        return p

    def _up(self, port):
        try:
            return redis_command(port, "PING") == "PONG"
        except (OSError, RuntimeError):
            return False

    def _start_node(self, port, replicaof=None):
        d = os.path.join(self.tmp, "node-%d" % port)
        os.makedirs(d, exist_ok=True)
        argv = [self.redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                "--daemonize", "no", "--save", ""]
        if self.persist:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        if self.min_replicas_to_write:
            argv += ["--min-replicas-to-write", str(self.min_replicas_to_write),
                     "--min-replicas-max-lag", "10"]
        if replicaof:
            argv += ["--replicaof", "127.0.0.1", str(replicaof)]
        self._spawn("redis", port, argv)
        wait_for(lambda: self._up(port), what="redis-server on %d" % port)

    def _start_sentinel(self, port):
        conf = os.path.join(self.tmp, "sentinel-%d.conf" % port)
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n" % (port, self.tmp))
            f.write("sentinel resolve-hostnames no\n")
            f.write("sentinel monitor %s 127.0.0.1 %d 2\n" % (self.master_name, self.primary_port))
            f.write("sentinel down-after-milliseconds %s %d\n"
                    % (self.master_name, self.down_after_ms))
            f.write("sentinel failover-timeout %s %d\n"
                    % (self.master_name, self.failover_timeout_ms))
            f.write("sentinel parallel-syncs %s 1\n" % self.master_name)
        self._spawn("sentinel", port, [self.redis_bin, conf, "--sentinel"])
        wait_for(lambda: self._up(port), what="sentinel on %d" % port)

    def start(self):
        """Starts everything; returns self once the Sentinels agree and replicas sync."""
        if not self.redis_bin:
            raise RuntimeError("redis-server not installed")
        self.primary_port = free_port()
        self._start_node(self.primary_port)
        for _ in range(self.n_replicas):
            p = free_port()
            self._start_node(p, replicaof=self.primary_port)
            self.replica_ports.append(p)
        wait_for(self._replicas_in_sync, what="replicas in sync")
        for _ in range(self.n_sentinels):
            p = free_port()
            self._start_sentinel(p)
            self.sentinel_ports.append(p)
        self.sentinels = ",".join("127.0.0.1:%d" % p for p in self.sentinel_ports)
        wait_for(self._sentinels_ready, what="sentinels see the primary")
        return self

    # ---- state ------------------------------------------------------------
    def command(self, port, *args):
        """One command to 127.0.0.1:port (a node or a Sentinel); returns the reply."""
        return redis_command(port, *args)

    def info(self, port, section="replication"):
        text = self.command(port, "INFO", section)
        out = {}
        for line in text.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k] = v.strip()
        return out

    def role(self, port):
        """ROLE's first word ('master', 'slave') or None when unreachable."""
        try:
            r = self.command(port, "ROLE")
            return r[0] if r else None
        except (OSError, RuntimeError):
            return None

    def _replicas_in_sync(self, primary=None, replicas=None):
        primary = self.primary_port if primary is None else primary
        replicas = self.replica_ports if replicas is None else replicas
        try:
            for p in replicas:
                i = self.info(p)
                if i.get("master_link_status") != "up" or i.get("master_port") != str(primary):
                    return False
                if i.get("master_sync_in_progress") not in (None, "0"):
                    return False
            return int(self.info(primary).get("connected_slaves", "0")) >= len(replicas)
        except (OSError, RuntimeError, ValueError):
            return False

    def sentinel_primary(self, sport):
        """The port the Sentinel on sport names as primary, or None."""
        try:
            r = self.command(sport, "SENTINEL", "get-master-addr-by-name", self.master_name)
            return int(r[1]) if r else None
        except (OSError, RuntimeError, ValueError, IndexError, TypeError):
            return None

    def _sentinel_knows(self, sport):
        try:
            m = self.command(sport, "SENTINEL", "master", self.master_name)
            d = dict(zip(m[0::2], m[1::2]))
            # Each Sentinel must know the replicas and the other Sentinels (quorum 2
            # needs them) before a failover can be asked for.
            return (int(d.get("port", 0)) == self.primary_port
                    and "s_down" not in d.get("flags", "")
                    and int(d.get("num-slaves", 0)) >= len(self.replica_ports)
                    and int(d.get("num-other-sentinels", 0)) >= len(self.sentinel_ports) - 1)
        except (OSError, RuntimeError, ValueError, TypeError):
            return False

    def _sentinels_ready(self):
        return all(self._sentinel_knows(p) for p in self.sentinel_ports)

    # ---- faults -----------------------------------------------------------
    def wait_new_primary(self, old_port, timeout=LIMIT):
        """Waits until every live Sentinel names a primary other than old_port and that
        node answers ROLE master; updates primary_port/replica_ports; returns the port."""
        found = {}

        def moved():
            live = [p for p in self.sentinel_ports if p in self.procs]
            ports = {self.sentinel_primary(p) for p in live}
            if len(ports) != 1:
                return False
            port = ports.pop()
            if port is None or port == old_port or self.role(port) != "master":
                return False
            found["port"] = port
            return True
        wait_for(moved, timeout, what="a new primary instead of %d" % old_port)
        new = found["port"]
        nodes = [self.primary_port] + self.replica_ports
        self.primary_port = new
        self.replica_ports = [p for p in nodes if p != new]
        return new

    def failover(self):
        """SENTINEL FAILOVER on the first Sentinel; returns the new primary's port once
        every Sentinel names it and it answers ROLE master."""
        wait_for(self._sentinels_ready, what="sentinels ready for a failover")
        old = self.primary_port
        # A Sentinel refuses while a previous failover is settling (INPROG/NOGOODSLAVE);
        # ask again until it accepts.
        def asked():
            try:
                return self.command(self.sentinel_ports[0], "SENTINEL", "failover",
                                    self.master_name) == "OK"
            except RuntimeError:
                return False
        wait_for(asked, what="SENTINEL FAILOVER accepted")
        return self.wait_new_primary(old)

    def kill_primary(self):
        """SIGKILL of the current primary (by pid); returns its port."""
        port = self.primary_port
        self.kill(port)
        return port

    def kill(self, port, sig=signal.SIGKILL):
        """Ends the process on port (a node or a Sentinel) started here, by pid."""
        p = self.procs.pop(port, None)
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(LIMIT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_sentinels(self):
        for p in list(self.sentinel_ports):
            self.kill(p, signal.SIGTERM)

    def close(self):
        for port in list(self.procs):
            self.kill(port, signal.SIGTERM)

    def __enter__(self):
        try:
            return self.start()
        except Exception:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
