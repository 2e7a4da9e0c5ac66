#!/usr/bin/env python3
"""fake-model-api.py: a loopback stand-in for the model APIs the real provider CLIs call.

Serves, on 127.0.0.1 and a free port, just enough of
  Anthropic Messages          POST /v1/messages                       (claude)
  OpenAI Responses            POST /v1/responses                      (codex)
  OpenAI Chat Completions     POST /v1/chat/completions               (opencode)
  Gemini generateContent      POST /v1beta/models/M:streamGenerateContent?alt=sse (gemini)
for the CLIs to run a turn (the SSE shapes of doc/providers.md, "Live tier").

What it answers depends on the latest user message of the conversation (its last text
block, <system-reminder> blocks aside):
  the tool's result is the latest input      a short text ("Tool finished; done.")
  FAKE_TOOL or FAKE_TOOL=NAME (and the request offers tools)
                                              one shell tool call: `touch NAME`
                                              (default fake_tool_ran.txt)
  FAKE_SLOW (and the request offers tools)    one text delta per second for 60 s
  FAKE_ERROR                                  HTTP 400 with the API's error body
  anything else                               "Hello from the fake model."
Requests without tools (titles, summaries) always get the short text.

Every request is logged as one JSON line: the API, path, model, scenario, the names of
the tools offered and a short digest of the conversation (each message's role and the
beginning of its texts), and the images it carries ("images": form — anthropic_image,
input_image, image_url, inlineData — media type and sha256 of the bytes, so a test can
tell that an attachment arrived). Headers are never logged (they carry the API keys), nor is a
`key=` query parameter.

Usage: fake-model-api.py --port-file F --log F [--lifetime SECONDS]
The port is written to the port file once the socket listens. The server exits by
itself after --lifetime seconds (default 900) or when its parent goes away.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HELLO = ["Hello from th", "e fake model."]
DONE = ["Tool finished; ", "done."]
SLOW_SECONDS = 60
LOG_LOCK = threading.Lock()
LOG_PATH = None


def log_request(rec):
    with LOG_LOCK:
        with open(LOG_PATH, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")


def short(text, n=160):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n] + "…"


def images_of(body):
    """Every image in a request, whatever the API: [{"form", "mime", "sha256"}] in order.
    Anthropic: a content block {"type":"image","source":{"type":"base64",...}}; OpenAI
    Responses: {"type":"input_image","image_url":"data:..."}; Chat Completions:
    {"type":"image_url","image_url":{"url":"data:..."}}; Gemini: {"inlineData":{...}}."""
    found = []

    def data_url(form, url):
        m = re.match(r"data:([^;,]+);base64,(.*)$", url or "", re.S)
        if m:
            add(form, m.group(1), m.group(2))

    def add(form, mime, b64):
        try:
            data = base64.b64decode(b64, validate=True)
        except (ValueError, TypeError):
            return
        found.append({"form": form, "mime": mime, "sha256": hashlib.sha256(data).hexdigest()})

    def walk(v):
        if isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            src = v.get("source")
            if v.get("type") == "image" and isinstance(src, dict) and src.get("type") == "base64":
                add("anthropic_image", src.get("media_type"), src.get("data"))
            elif v.get("type") == "input_image":
                data_url("input_image", v.get("image_url"))
            elif v.get("type") == "image_url" and isinstance(v.get("image_url"), dict):
                data_url("image_url", v["image_url"].get("url"))
            elif isinstance(v.get("inlineData"), dict):
                d = v["inlineData"]
                add("inlineData", d.get("mimeType"), d.get("data"))
            else:
                for x in v.values():
                    walk(x)
    walk(body)
    return found


# ---- reading the conversation, per API ------------------------------------------------
# Each reader returns (history, last) where history is [(role, [texts])] in order and
# last is ("tool_result", None) when the newest input is a tool's output, else
# ("user", text of the newest user message).

def read_anthropic(body):
    history = []
    for m in body.get("messages") or []:
        c = m.get("content")
        blocks = [{"type": "text", "text": c}] if isinstance(c, str) else (c or [])
        texts, tool = [], False
        for b in blocks:
            if not isinstance(b, dict):
                continue
            if b.get("type") == "text":
                texts.append(b.get("text", ""))
            elif b.get("type") == "tool_result":
                tool = True
        history.append((m.get("role"), texts, tool))
    return history


def read_responses(body):
    history = []
    items = body.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    for it in items or []:
        if not isinstance(it, dict):
            continue
        t = it.get("type", "message")
        if t == "function_call_output" or t == "custom_tool_call_output":
            history.append(("tool", [], True))
        elif t == "message":
            c = it.get("content")
            parts = [{"text": c}] if isinstance(c, str) else (c or [])
            texts = [p.get("text", "") for p in parts if isinstance(p, dict) and "text" in p]
            history.append((it.get("role"), texts, False))
    return history


def read_chat(body):
    history = []
    for m in body.get("messages") or []:
        c = m.get("content")
        parts = [{"type": "text", "text": c}] if isinstance(c, str) else (c or [])
        texts = [p.get("text", "") for p in parts if isinstance(p, dict) and p.get("type") == "text"]
        history.append((m.get("role"), texts, m.get("role") == "tool"))
    return history


def read_gemini(body):
    history = []
    for m in body.get("contents") or []:
        texts, tool = [], False
        for p in m.get("parts") or []:
            if "text" in p:
                texts.append(p["text"])
            if "functionResponse" in p:
                tool = True
        history.append((m.get("role"), texts, tool))
    return history


def scenario_of(history, has_tools):
    """What to answer: ("done"|"tool"|"slow"|"error"|"text", tool file name)."""
    for role, texts, tool in reversed(history):
        if tool:
            return "done", None
        if role != "user":
            continue
        # The newest text block only: Gemini keeps an aborted turn's prompt and adds the
        # next prompt to the same user message as another part.
        texts = [x for x in texts if not x.lstrip().startswith("<system-reminder>")]
        text = texts[-1] if texts else ""
        if "FAKE_ERROR" in text:
            return "error", None
        if not has_tools:
            return "text", None
        m = re.search(r"FAKE_TOOL(?:=([A-Za-z0-9_.-]+))?", text)
        if m:
            return "tool", m.group(1) or "fake_tool_ran.txt"
        if "FAKE_SLOW" in text:
            return "slow", None
        return "text", None
    return "text", None


def tool_names(api, body):
    tools = body.get("tools") or []
    names = []
    for t in tools:
        if not isinstance(t, dict):
            continue
        if api == "gemini":
            names += [d.get("name") for d in t.get("functionDeclarations") or []]
        elif api == "chat":
            names.append((t.get("function") or {}).get("name"))
        else:
            names.append(t.get("name") or t.get("type"))
    return [n for n in names if n]


# ---- the handler ------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-model-api/1"

    def log_message(self, fmt, *args):  # the request log is ours, not stderr
        pass

    def do_GET(self):
        log_request({"t": time.time(), "method": "GET", "path": self.clean_path(), "api": None})
        self.send_json(404, {"error": {"message": "not found in the fake model API"}})

    def clean_path(self):
        u = urlsplit(self.path)
        q = "&".join(p for p in u.query.split("&") if p and not p.startswith("key="))
        return u.path + ("?" + q if q else "")

    def send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def sse(self, data, event=None):
        out = ""
        if event:
            out += "event: %s\n" % event
        out += "data: %s\n\n" % (data if isinstance(data, str) else json.dumps(data))
        self.wfile.write(out.encode())
        self.wfile.flush()

    def do_POST(self):
        path = urlsplit(self.path).path
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        if path.endswith("/v1/messages"):
            api, history = "anthropic", read_anthropic(body)
        elif path.endswith("/v1/responses"):
            api, history = "responses", read_responses(body)
        elif path.endswith("/v1/chat/completions"):
            api, history = "chat", read_chat(body)
        elif re.search(r"/v1beta/models/[^/]+:(stream)?[gG]enerateContent$", path):
            api, history = "gemini", read_gemini(body)
        else:
            log_request({"t": time.time(), "method": "POST", "path": self.clean_path(), "api": None})
            self.send_json(404, {"error": {"message": "not found in the fake model API"}})
            return
        tools = tool_names(api, body)
        scenario, fname = scenario_of(history, bool(tools))
        if api == "gemini":
            model = path.rsplit("/", 1)[-1].split(":")[0]
            stream = ":streamGenerateContent" in path
        else:
            model = body.get("model")
            stream = bool(body.get("stream"))
        log_request({
            "t": time.time(), "method": "POST", "path": self.clean_path(), "api": api,
            "model": model, "stream": stream, "scenario": scenario, "tools": tools[:60],
            "images": images_of(body),
            "history": [[role, [short(x) for x in texts
                                if not x.lstrip().startswith("<system-reminder>")][:4], tool]
                        for role, texts, tool in history][-12:],
        })
        try:
            if scenario == "error":
                self.error_400(api)
            else:
                getattr(self, "answer_" + api)(scenario, fname, stream, model)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the CLI went away (an abort): nothing more to send

    def chunks(self, scenario):
        """The text pieces of a text answer, with the pause before each."""
        if scenario == "slow":
            return [(1.0, "slow %d. " % i) for i in range(1, SLOW_SECONDS + 1)]
        return [(0, s) for s in (DONE if scenario == "done" else HELLO)]

    def error_400(self, api):
        msg = "fake error for testing"
        if api == "anthropic":
            body = {"type": "error", "error": {"type": "invalid_request_error", "message": msg}}
        elif api == "gemini":
            body = {"error": {"code": 400, "message": msg, "status": "INVALID_ARGUMENT"}}
        else:
            body = {"error": {"message": msg, "type": "invalid_request_error", "param": None,
                              "code": None}}
        self.send_json(400, body)

    # ---- Anthropic Messages ----
    def answer_anthropic(self, scenario, fname, stream, model):
        mid = "msg_" + uuid.uuid4().hex[:20]
        usage = {"input_tokens": 12, "output_tokens": 1, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0}
        if scenario == "tool":
            block = {"type": "tool_use", "id": "toolu_fake" + uuid.uuid4().hex[:12], "name": "Bash",
                     "input": {}}
            args = {"command": "touch " + fname, "description": "Create a marker file"}
            stop = "tool_use"
        else:
            block = {"type": "text", "text": ""}
            stop = "end_turn"
        if not stream:
            full = dict(block)
            if scenario == "tool":
                full["input"] = args
            else:
                full["text"] = "".join(s for _, s in self.chunks(scenario))
            self.send_json(200, {"id": mid, "type": "message", "role": "assistant", "model": model,
                                 "content": [full], "stop_reason": stop, "stop_sequence": None,
                                 "usage": dict(usage, output_tokens=7)})
            return
        self.start_sse()
        self.sse({"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage}}, "message_start")
        self.sse({"type": "content_block_start", "index": 0, "content_block": block},
                 "content_block_start")
        self.sse({"type": "ping"}, "ping")
        if scenario == "tool":
            self.sse({"type": "content_block_delta", "index": 0, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(args)}}, "content_block_delta")
        else:
            for pause, s in self.chunks(scenario):
                time.sleep(pause)
                self.sse({"type": "content_block_delta", "index": 0,
                          "delta": {"type": "text_delta", "text": s}}, "content_block_delta")
        self.sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        self.sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                  "usage": {"output_tokens": 7}}, "message_delta")
        self.sse({"type": "message_stop"}, "message_stop")

    # ---- OpenAI Responses ----
    def answer_responses(self, scenario, fname, stream, model):
        rid = "resp_" + uuid.uuid4().hex[:16]
        usage = {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 19}
        seq = iter(range(10000))
        resp = {"id": rid, "object": "response", "created_at": int(time.time()), "model": model,
                "status": "in_progress", "output": []}
        self.start_sse()

        def ev(kind, **kw):
            kw.update(type=kind, sequence_number=next(seq))
            self.sse(kw, kind)
        ev("response.created", response=resp)
        if scenario == "tool":
            args = json.dumps({"cmd": "touch " + fname})
            item = {"type": "function_call", "id": "fc_" + uuid.uuid4().hex[:12],
                    "call_id": "call_" + uuid.uuid4().hex[:12], "name": "exec_command",
                    "arguments": "", "status": "in_progress"}
            ev("response.output_item.added", output_index=0, item=item)
            ev("response.function_call_arguments.delta", output_index=0, item_id=item["id"],
               delta=args)
            ev("response.function_call_arguments.done", output_index=0, item_id=item["id"],
               arguments=args)
            done = dict(item, arguments=args, status="completed")
        else:
            item = {"type": "message", "id": "msg_" + uuid.uuid4().hex[:12], "role": "assistant",
                    "status": "in_progress", "content": []}
            ev("response.output_item.added", output_index=0, item=item)
            ev("response.content_part.added", output_index=0, item_id=item["id"], content_index=0,
               part={"type": "output_text", "text": "", "annotations": []})
            text = ""
            for pause, s in self.chunks(scenario):
                time.sleep(pause)
                text += s
                ev("response.output_text.delta", output_index=0, item_id=item["id"],
                   content_index=0, delta=s)
            ev("response.output_text.done", output_index=0, item_id=item["id"], content_index=0,
               text=text)
            done = dict(item, status="completed",
                        content=[{"type": "output_text", "text": text, "annotations": []}])
        ev("response.output_item.done", output_index=0, item=done)
        ev("response.completed", response=dict(resp, status="completed", output=[done],
                                                usage=usage))

    # ---- OpenAI Chat Completions ----
    def answer_chat(self, scenario, fname, stream, model):
        cid = "chatcmpl-" + uuid.uuid4().hex[:12]
        usage = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
        if not stream:
            text = "".join(s for _, s in self.chunks("text" if scenario == "tool" else scenario))
            self.send_json(200, {"id": cid, "object": "chat.completion", "created": int(time.time()),
                                 "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                                 "usage": usage})
            return
        self.start_sse()

        def chunk(delta, finish=None):
            self.sse({"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                      "model": model, "choices": [{"index": 0, "delta": delta,
                                                    "finish_reason": finish}]})
        if scenario == "tool":
            args = json.dumps({"command": "touch " + fname, "description": "Create a marker file"})
            chunk({"role": "assistant", "content": None, "tool_calls": [{
                "index": 0, "id": "call_" + uuid.uuid4().hex[:12], "type": "function",
                "function": {"name": "bash", "arguments": ""}}]})
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": args}}]})
            chunk({}, "tool_calls")
        else:
            chunk({"role": "assistant", "content": ""})
            for pause, s in self.chunks(scenario):
                time.sleep(pause)
                chunk({"content": s})
            chunk({}, "stop")
        self.sse({"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                  "model": model, "choices": [], "usage": usage})
        self.sse("[DONE]")

    # ---- Gemini ----
    def answer_gemini(self, scenario, fname, stream, model):
        usage = {"promptTokenCount": 12, "candidatesTokenCount": 7, "totalTokenCount": 19}

        def cand(parts, last):
            c = {"content": {"role": "model", "parts": parts}, "index": 0}
            out = {"candidates": [c], "modelVersion": "gemini-fake",
                   "responseId": uuid.uuid4().hex[:10]}
            if last:
                c["finishReason"] = "STOP"
                out["usageMetadata"] = usage
            return out
        if scenario == "tool":
            pieces = [(0, [{"functionCall": {"name": "run_shell_command", "args": {
                "command": "touch " + fname, "description": "Create a marker file"}}}])]
        else:
            pieces = [(p, [{"text": s}]) for p, s in self.chunks(scenario)]
        if not stream:
            parts = [x for _, ps in pieces for x in ps]
            if scenario != "tool":
                parts = [{"text": "".join(p["text"] for p in parts)}]
            self.send_json(200, cand(parts, True))
            return
        self.start_sse()
        for i, (pause, parts) in enumerate(pieces):
            time.sleep(pause)
            self.sse(cand(parts, i == len(pieces) - 1))


def main():
    global LOG_PATH
    ap = argparse.ArgumentParser(description="loopback fake model API for the live tier")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--lifetime", type=float, default=900.0)
    a = ap.parse_args()
    LOG_PATH = a.log
    open(LOG_PATH, "a").close()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    parent = os.getppid()
    deadline = time.monotonic() + a.lifetime

    def watchdog():
        while time.monotonic() < deadline and os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)
    threading.Thread(target=watchdog, daemon=True).start()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
