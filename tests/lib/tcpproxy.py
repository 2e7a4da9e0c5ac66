"""tcpproxy.py: a loopback TCP proxy a test controls, to cut one host off from Redis.

TcpProxy(target_port) listens on a free 127.0.0.1 port and forwards every connection to
127.0.0.1:target_port, one thread per direction. cut() closes every connection it
carries and blackholes new ones (accepted, never forwarded, never answered: what a
partition looks like to a client with a timeout); heal() forwards again. close() stops it.
"""
import socket
import threading


class TcpProxy:
    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []  # open sockets (both sides) of forwarded connections
        self.held = []  # blackholed client sockets
        self.is_cut = False
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                if self.closed:
                    c.close()
                    return
                if self.is_cut:
                    self.held.append(c)
                    continue
            try:
                u = socket.create_connection(self.target, 5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            threading.Thread(target=self._pipe, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()

    def _pipe(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Closes every forwarded connection; new ones are held unanswered."""
        with self.lock:
            self.is_cut = True
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def heal(self):
        """Forwards new connections again (held ones are closed: their clients retry)."""
        with self.lock:
            self.is_cut = False
            held, self.held = self.held, []
        for s in held:
            s.close()

    def close(self):
        with self.lock:
            self.closed = True
        self.cut()
        self.heal()
        self.lsock.close()
