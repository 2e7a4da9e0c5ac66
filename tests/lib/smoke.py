"""smoke.py: the same end-to-end checks through each web server chatgw ships a config for.

tests/integration/smoke-*.test call run(server) with "lighttpd", "apache-proxy" or
"apache-fcgid" (see stack.py): health, bearer auth through the proxy, error bodies,
a big request body, the static web root, send + long-poll subscribe with a cursor, a
held poll woken by a publish, a poll held for the longest waitMs (55 s) that must come
back empty rather than be cut by a proxy timeout, permission allow, abort, and the API
mounted at another prefix (the web server and http.prefix agree).
"""
import http.client
import os
import re
import threading

from stack import LIMIT, TOP_SRCDIR, Background, Stack, Tap, follow, wait_until

FAKE = os.path.join(TOP_SRCDIR, "tests", "fixtures", "fake-claude")


def kinds(evs):
    return [e["kind"] for e in evs]


def code(r):
    return (r.status, (r.json or {}).get("code"))


def pids_with_config(exe, config):
    """Live processes running exe with CHATGW_CONFIG=config (mod_fcgid's chatgw.fcgi)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/exe" % d) != os.path.realpath(exe):
                continue
            env = open("/proc/%s/environ" % d, "rb").read().split(b"\0")
        except OSError:
            continue
        if ("CHATGW_CONFIG=" + config).encode() in env:
            found.append(int(d))
    return found


def run(server):
    t = Tap()
    st = Stack(server=server, extra_config={
        "claude.bin": FAKE, "runner.term_grace_ms": "1000", "runner.kill_grace_ms": "2000",
        "runner.abort_wait_ms": "8000", "permissions.timeout_s": "120"})
    why = st.missing()
    if why:
        st.close()
        t.skip_all(why)
    with open(os.path.join(st.www, "index.html"), "w") as f:
        f.write("<!doctype html><title>chatgw</title>\n")
    t.diag("server: " + server)

    with st:
        alice = st.user("alice")
        bob = st.user("bob")
        project = os.path.join(st.projects, "demo")

        def new_session():
            r = st.request("POST", "/sessions", {"provider": "claude", "projectPath": project},
                           token=alice)
            t.eq(r.status, 201, "session created")
            return r.json["session"]["id"]

        # A poll held for the longest waitMs on an idle session, alongside everything
        # else: it must come back 200 with no events, not be cut by a proxy timeout.
        idle = new_session()
        long_poll = {}

        def hold():
            long_poll["r"] = st.request("POST", "/chat/subscribe",
                                        {"sessions": [{"sessionId": idle, "lastSeq": 0}],
                                         "waitMs": 55000}, token=alice, timeout=90)
        holder = threading.Thread(target=hold)
        holder.start()

        # ---- plain requests ----------------------------------------------------------
        r = st.request("GET", "/health")
        t.ok(r.status == 200 and (r.json or {}).get("status") == "ok", "health: 200 ok", r)
        t.ok((r.header("Content-Type") or "").startswith("application/json"),
             "answers are application/json", r.headers)
        r = st.request("GET", "/sessions")
        t.eq(code(r), (401, "UNAUTHORIZED"), "no token: 401 UNAUTHORIZED with chatgw's body")
        r = st.request("GET", "/sessions", token="cgw_not_a_token")
        t.eq(code(r), (401, "UNAUTHORIZED"), "a wrong token: 401")
        r = st.request("GET", "/sessions", token=alice)
        t.eq(r.status, 200, "Authorization: Bearer passes through the web server")
        r = st.request("GET", "/sessions/nope/../../x", token=alice)
        t.ok(r.status in (400, 404), "a dotted path is not served", r)
        r = st.request("GET", "/no/such/route", token=alice)
        t.eq(code(r), (404, "NOT_FOUND"), "unknown route: 404 with chatgw's JSON body")
        r = st.request("DELETE", "/chat/send", token=alice)
        t.eq(code(r), (405, "METHOD_NOT_ALLOWED"), "wrong method: 405 with chatgw's body")
        r = st.request("POST", "/chat/send", {}, token=alice)
        t.ok(code(r) == (400, "SESSION_ID_REQUIRED") and "error" in (r.json or {}),
             "a 4xx error body reaches the client unchanged", r)
        sid = new_session()
        r = st.request("POST", "/chat/send", {"sessionId": sid, "content": "x" * (300 * 1024)},
                       token=alice)
        t.eq(code(r), (413, "PAYLOAD_TOO_LARGE"),
             "a 300 KB body reaches chatgw, which answers 413 itself")
        r = st.request("GET", "/sessions/" + sid, token=bob)
        t.eq(code(r), (404, "SESSION_NOT_FOUND"), "bob does not see alice's session")

        c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=10)
        c.request("GET", "/")
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        t.ok(r.status == 200 and "<title>chatgw</title>" in body, "the web root is served at /",
             (r.status, body[:200]))

        # Security headers from the shipped config, on the page and on the API's answers:
        # framing refused (frame-ancestors only works as a header), no MIME sniffing, no
        # Referer; the header's policy is the page's meta policy plus frame-ancestors.
        csp = r.getheader("Content-Security-Policy") or ""
        t.ok("frame-ancestors 'none'" in csp, "the page: CSP header with frame-ancestors 'none'",
             r.getheaders())
        t.eq((r.getheader("X-Frame-Options"), r.getheader("X-Content-Type-Options"),
              r.getheader("Referrer-Policy")), ("DENY", "nosniff", "no-referrer"),
             "the page: X-Frame-Options, nosniff, Referrer-Policy")
        page = open(os.path.join(TOP_SRCDIR, "deploy", "www", "index.html")).read()
        meta = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
        t.eq(csp, (meta.group(1) if meta else "") + "; frame-ancestors 'none'",
             "the header's CSP is deploy/www/index.html's meta CSP plus frame-ancestors")
        r = st.request("GET", "/sessions", token=alice)
        t.eq((r.header("X-Content-Type-Options"), r.header("X-Frame-Options")), ("nosniff", "DENY"),
             "the API's answers carry nosniff and X-Frame-Options too")
        r = st.request("GET", "/sessions")
        t.eq((r.status, r.header("X-Content-Type-Options")), (401, "nosniff"),
             "an error answer carries them too")

        # ---- send, subscribe, cursor --------------------------------------------------
        r = st.request("POST", "/chat/send", {"sessionId": sid, "content": "scenario:text"},
                       token=alice)
        t.eq(r.status, 202, "send: 202")
        start = r.json["lastSeq"] if r.status == 202 else 0
        evs, cur = follow(st, alice, sid, start)
        t.eq(kinds(evs)[:1], ["run_started"], "subscribe: run_started first")
        t.eq(kinds(evs).count("complete"), 1, "subscribe: exactly one complete")
        t.ok("text" in kinds(evs) and kinds(evs)[-1:] == ["complete"], "text, then complete last",
             kinds(evs))
        t.eq([e["seq"] for e in evs], list(range(start + 1, cur + 1)), "seqs gapless")
        done = [e for e in evs if e["kind"] == "complete"]
        t.ok(done and done[0].get("success") is True, "the run succeeded", evs)
        r = st.request("POST", "/chat/subscribe",
                       {"sessions": [{"sessionId": sid, "lastSeq": cur}], "waitMs": 0}, token=alice)
        t.ok(r.status == 200 and not [f for f in r.json["frames"] if "seq" in f],
             "cursor at the end: nothing again", r)
        r = st.request("GET", "/chat/subscribe?sessionId=%s&lastSeq=%d&waitMs=0" % (sid, cur - 1),
                       token=alice)
        seqs = [f["seq"] for f in (r.json or {}).get("frames", []) if "seq" in f]
        t.eq(seqs, [cur], "GET subscribe from cursor-1: exactly the last event")

        # ---- a held poll is woken by a publish --------------------------------------
        n = st.parked()
        poll = Background(st.request, "POST", "/chat/subscribe",
                          {"sessions": [{"sessionId": sid, "lastSeq": cur}], "waitMs": 50000},
                          token=alice, timeout=90)
        # Held before the send. mod_fcgid runs several chatgw.fcgi processes and /health
        # may ask another one: there the answer is checked without knowing.
        if server != "apache-fcgid":
            t.ok(st.wait_parked(n + 1), "a poll with nothing new is held")
        r = st.request("POST", "/chat/send", {"sessionId": sid, "content": "scenario:text"},
                       token=alice)
        t.eq(r.status, 202, "second send: 202")
        wr = poll.join(2 * LIMIT)
        got = [f for f in (wr.json or {}).get("frames", []) if "seq" in f] if wr else []
        t.ok(wr is not None and wr.status == 200 and got and got[0]["seq"] == cur + 1,
             "a held poll returns the new run's first events", wr)
        evs, cur = follow(st, alice, sid, cur)
        done = [e for e in evs if e["kind"] == "complete"]
        t.ok(len(done) == 1 and done[0].get("success") is True, "the second run succeeds once",
             evs)

        # ---- permission: allow ---------------------------------------------------------
        sid2 = new_session()
        r = st.request("POST", "/chat/send", {"sessionId": sid2, "content": "scenario:permission"},
                       token=alice)
        t.eq(r.status, 202, "permission scenario: 202")
        evs, cur2 = follow(st, alice, sid2, r.json["lastSeq"] if r.status == 202 else 0,
                           until=lambda e: "permission_request" in kinds(e))
        pr = [e for e in evs if e["kind"] == "permission_request"]
        t.ok(len(pr) == 1 and pr[0].get("toolName") == "Bash", "permission_request published", pr)
        rid = pr[0]["requestId"] if pr else "perm_none"
        r = st.request("POST", "/chat/permission", {"requestId": rid, "allow": True}, token=alice)
        t.ok(r.status == 200 and (r.json or {}).get("allow") is True, "permission allow: 200", r)
        evs, cur2 = follow(st, alice, sid2, cur2)
        res = [e for e in evs if e["kind"] == "permission_resolved"]
        t.ok(res and res[0].get("allow") is True, "permission_resolved{allow:true}", kinds(evs))
        t.ok("tool_result" in kinds(evs) and kinds(evs)[-1:] == ["complete"],
             "the tool ran and the run completed", kinds(evs))
        t.ok(os.path.exists(os.path.join(project, "fake_tool_ran.txt")), "the allowed tool ran")

        # ---- abort -----------------------------------------------------------------------
        r = st.request("POST", "/chat/send",
                       {"sessionId": sid2, "content": "scenario:slow n=400 delay=0.1"}, token=alice)
        t.eq(r.status, 202, "slow run: 202")
        evs, cur2 = follow(st, alice, sid2, r.json["lastSeq"] if r.status == 202 else 0,
                           until=lambda e: "stream_delta" in kinds(e))
        r = st.request("POST", "/chat/abort", {"sessionId": sid2}, token=alice, timeout=30)
        t.ok(r.status in (200, 202), "abort answered", r)
        more, cur2 = follow(st, alice, sid2, cur2)
        evs += more
        done = [e for e in evs if e["kind"] == "complete"]
        t.ok(len(done) == 1 and done[0].get("aborted") is True,
             "abort: exactly one complete{aborted:true}", done)
        r = st.request("POST", "/chat/abort", {"sessionId": sid2}, token=alice)
        t.eq(code(r), (409, "NO_ACTIVE_RUN"), "abort again: 409 NO_ACTIVE_RUN")

        holder.join()
        lr = long_poll.get("r")
        t.ok(lr is not None and lr.status == 200 and
             not [f for f in lr.json["frames"] if "seq" in f],
             "a poll held for waitMs 55000 comes back 200 and empty (no proxy timeout)", lr)

        server_pid = st.procs["lighttpd" if server == "lighttpd" else "apache"].pid
        fcgid_exe = getattr(st, "fcgi_exe", st.fcgi_bin)
        if server == "apache-fcgid":
            t.ok(pids_with_config(fcgid_exe, st.config), "mod_fcgid started chatgw.fcgi")

    # ---- another mount point: the web server and http.prefix agree ---------------------
    with Stack(server=server, prefix="/tools/chat") as st2:
        carol = st2.user("carol")
        r = st2.request("GET", "/sessions", token=carol)
        t.eq(r.status, 200, "mounted at /tools/chat: GET /tools/chat/sessions")
        r = st2.request("GET", "/sessions/none/messages", token=carol)
        t.eq(code(r), (404, "SESSION_NOT_FOUND"), "mounted at /tools/chat: a routed 404")
        c = http.client.HTTPConnection("127.0.0.1", st2.port, timeout=10)
        c.request("GET", "/api/health")
        r = c.getresponse()
        r.read()
        c.close()
        t.eq(r.status, 404, "mounted at /tools/chat: /api is not the API")

    # ---- the web server (and what it started) ended by its pid --------------------------
    try:
        os.kill(server_pid, 0)
        gone = False
    except ProcessLookupError:
        gone = True
    t.ok(gone, "the web server (pid %d) is gone after the stack closed" % server_pid)
    if server == "apache-fcgid":
        wait_until(lambda: not pids_with_config(fcgid_exe, st.config))
        t.eq(pids_with_config(fcgid_exe, st.config), [],
             "no chatgw.fcgi of mod_fcgid outlives Apache")
    t.done()
