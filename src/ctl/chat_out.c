/* chat_out.c: how `chatgwctl chat` shows a run's events: text on stdout, the rest on stderr. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/chat.h"

/* The longest stderr line shown for a tool result, thinking or status. */
#define NOTE_MAX 400

/* Writes n bytes of s to stdout; on a terminal, control characters other than newline
 * and tab become '?' (model output must not drive the terminal). */
static int put_text(struct chat_out *o, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (o->out_tty) {
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)s[i];
            bool ctl = (ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f;
            if (fputc(ctl ? '?' : ch, stdout) == EOF)
                return -1;
        }
    } else if (fwrite(s, 1, n, stdout) != n) {
        return -1;
    }
    o->midline = s[n - 1] != '\n';
    return fflush(stdout) == 0 ? 0 : -1;
}

static void end_line(struct chat_out *o)
{
    if (o->midline && put_text(o, "\n", 1) == 0)
        o->midline = false;
}

/* One line from s: control characters (newlines included) as ' ', cut to cap. */
static void one_line(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && n + 4 < cap; p++)
        buf[n++] = (*p < 0x20 || *p == 0x7f) ? ' ' : (char)*p;
    if (s && strlen(s) > n && n + 4 <= cap) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
}

void chat_out_note(struct chat_out *o, const char *fmt, ...)
{
    if (o->out_tty && o->err_tty)
        end_line(o);
    va_list ap;
    va_start(ap, fmt);
    fputs("chatgwctl chat: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void chat_tool_label(const char *tool, const json_t *input, char *buf, size_t cap)
{
    const char *command = json_string_value(json_object_get(input, "command"));
    const char *path = json_string_value(json_object_get(input, "file_path"));
    char *dump = NULL;
    const char *arg = NULL;
    if (tool && strcmp(tool, "Bash") == 0 && command)
        arg = command;
    else if (path)
        arg = path;
    else if (input)
        arg = dump = json_dumps(input, JSON_COMPACT | JSON_SORT_KEYS);
    char inner[NOTE_MAX];
    one_line(arg ? arg : "", inner, sizeof inner);
    snprintf(buf, cap, "%s(%s)", tool && tool[0] ? tool : "tool", inner);
    free(dump);
}

/* Keeps the stream_delta text to compare with the assistant text that follows. */
static void keep_streamed(struct chat_out *o, const char *s, size_t n)
{
    if (o->streamed_over || n > CHAT_STREAM_KEEP - o->streamed_len) {
        o->streamed_over = true;
        o->streamed_len += n;
        return;
    }
    if (o->streamed_len + n + 1 > o->streamed_cap) {
        size_t cap = o->streamed_cap ? o->streamed_cap : 1024;
        while (cap < o->streamed_len + n + 1)
            cap *= 2;
        char *grown = realloc(o->streamed, cap);
        if (!grown) {
            o->streamed_over = true;
            o->streamed_len += n;
            return;
        }
        o->streamed = grown;
        o->streamed_cap = cap;
    }
    memcpy(o->streamed + o->streamed_len, s, n);
    o->streamed_len += n;
    o->streamed[o->streamed_len] = '\0';
}

/* An assistant's text: the part not already streamed as deltas, then a newline. Like
 * the web page (which replaces its streamed bubble by the final text), nothing shows
 * twice: what was streamed is the start of the final text. */
static int assistant_text(struct chat_out *o, const char *content)
{
    size_t len = strlen(content), skip = 0;
    if (o->streamed_len > 0) {
        if (o->streamed_over)
            skip = o->streamed_len < len ? o->streamed_len : len;
        else if (strncmp(content, o->streamed, o->streamed_len) == 0)
            skip = o->streamed_len;
        else
            skip = len; /* the deltas showed another wording: keep what is on screen */
    }
    o->streamed_len = 0;
    o->streamed_over = false;
    if (put_text(o, content + skip, len - skip) < 0)
        return -1;
    end_line(o);
    return 0;
}

static void tool_result_note(struct chat_out *o, const json_t *ev)
{
    const json_t *content = json_object_get(ev, "content");
    char *dump = NULL;
    const char *text = json_string_value(content);
    if (!text && content)
        text = dump = json_dumps(content, JSON_COMPACT);
    char line[NOTE_MAX];
    one_line(text ? text : "", line, sizeof line);
    chat_out_note(o, "%s %s",
                  json_is_true(json_object_get(ev, "isError")) ? "[tool error]" : "[tool result]",
                  line);
    free(dump);
}

static void complete_note(struct chat_out *o, const json_t *ev)
{
    const char *reason = json_string_value(json_object_get(ev, "reason"));
    json_int_t code = json_integer_value(json_object_get(ev, "exitCode"));
    if (json_is_true(json_object_get(ev, "aborted")))
        chat_out_note(o, "[complete] aborted");
    else if (json_is_true(json_object_get(ev, "success")))
        chat_out_note(o, "[complete] success");
    else
        chat_out_note(o, "[complete] failed (exit %lld%s%s)", (long long)code, reason ? ", " : "",
                      reason ? reason : "");
}

int chat_out_event(struct chat_out *o, const json_t *ev)
{
    if (o->json) {
        if (json_dumpf(ev, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0 ||
            fputc('\n', stdout) == EOF || fflush(stdout) != 0)
            return -1;
        return 0;
    }
    const char *kind = json_string_value(json_object_get(ev, "kind"));
    const char *content = json_string_value(json_object_get(ev, "content"));
    char line[NOTE_MAX];
    kind = kind ? kind : "";
    if (strcmp(kind, "stream_delta") == 0 && content) {
        keep_streamed(o, content, strlen(content));
        return put_text(o, content, strlen(content));
    }
    if (strcmp(kind, "text") == 0) {
        const char *role = json_string_value(json_object_get(ev, "role"));
        if (role && strcmp(role, "user") == 0)
            return 0; /* the prompt we sent */
        return assistant_text(o, content ? content : "");
    }
    if (strcmp(kind, "thinking") == 0) {
        one_line(content, line, sizeof line);
        chat_out_note(o, "[thinking] %s", line);
    } else if (strcmp(kind, "tool_use") == 0) {
        char label[NOTE_MAX + 64];
        chat_tool_label(json_string_value(json_object_get(ev, "toolName")),
                        json_object_get(ev, "toolInput"), label, sizeof label);
        chat_out_note(o, "[tool] %s", label);
    } else if (strcmp(kind, "tool_result") == 0) {
        tool_result_note(o, ev);
    } else if (strcmp(kind, "status") == 0) {
        const char *text = json_string_value(json_object_get(ev, "text"));
        if (text) {
            one_line(text, line, sizeof line);
            chat_out_note(o, "[status] %s", line);
        }
    } else if (strcmp(kind, "error") == 0) {
        one_line(content, line, sizeof line);
        chat_out_note(o, "[error] %s", line);
    } else if (strcmp(kind, "permission_resolved") == 0) {
        chat_out_note(o, "[permission] %s",
                      json_is_true(json_object_get(ev, "allow")) ? "allowed" : "denied");
    } else if (strcmp(kind, "permission_cancelled") == 0) {
        const char *reason = json_string_value(json_object_get(ev, "reason"));
        one_line(reason, line, sizeof line);
        chat_out_note(o, "[permission] withdrawn%s%s", reason ? ": " : "", line);
    } else if (strcmp(kind, "complete") == 0) {
        end_line(o);
        complete_note(o, ev);
    }
    return 0;
}

void chat_out_finish(struct chat_out *o)
{
    if (!o->json)
        end_line(o);
    free(o->streamed);
    o->streamed = NULL;
    o->streamed_len = o->streamed_cap = 0;
}
