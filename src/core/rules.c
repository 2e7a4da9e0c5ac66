/* rules.c: strict matching of permission rules against a tool use (DESIGN §8), and the
 * rules that may be remembered for one. */
#include "core/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* True when the n bytes at s hold no shell operator (see rules.h). */
static bool simple_n(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case ';':  /* a; b */
        case '&':  /* a && b, a & b, 2>&1 */
        case '|':  /* a | b, a || b */
        case '`':  /* `b` */
        case '\n': /* a\nb */
        case '\r':
        case '>': /* a > file, >(b) */
        case '<': /* <(b), a < file */
        case '\0':
            return false;
        case '$':
            if (i + 1 < n && s[i + 1] == '(') /* $(b) */
                return false;
            break;
        default:
            break;
        }
    }
    return true;
}

bool rules_command_is_simple(const char *cmd)
{
    return simple_n(cmd, strlen(cmd));
}

/* The next blank-separated word in [*s, end): its start and length; advances *s past
 * it. Returns false at the end. */
static bool next_word(const char **s, const char *end, const char **word, size_t *len)
{
    const char *p = *s;
    while (p < end && is_blank(*p))
        p++;
    if (p == end) {
        *s = p;
        return false;
    }
    *word = p;
    while (p < end && !is_blank(*p))
        p++;
    *len = (size_t)(p - *word);
    *s = p;
    return true;
}

/* True when the words of the pattern (n bytes) are the first words of cmd; when
 * whole is true, cmd must have no further word. An empty pattern matches nothing. */
static bool words_match(const char *pattern, size_t n, const char *cmd, bool whole)
{
    const char *pp = pattern, *pend = pattern + n, *cp = cmd, *cend = cmd + strlen(cmd);
    const char *pw, *cw;
    size_t pl, cl;
    bool any = false;

    while (next_word(&pp, pend, &pw, &pl)) {
        if (!next_word(&cp, cend, &cw, &cl) || cl != pl || memcmp(cw, pw, pl) != 0)
            return false;
        any = true;
    }
    if (whole && next_word(&cp, cend, &cw, &cl))
        return false;
    return any;
}

/* The Bash command of a tool input, or NULL. */
static const char *bash_command(const json_t *input)
{
    if (json_is_string(input))
        return json_string_value(input);
    return json_string_value(json_object_get(input, "command"));
}

/* s without blanks and line ends at both ends: start and length. */
static void trim(const char *s, size_t len, const char **start, size_t *out_len)
{
    while (len > 0 && (is_blank(*s) || *s == '\n' || *s == '\r')) {
        s++;
        len--;
    }
    while (len > 0 && (is_blank(s[len - 1]) || s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    *start = s;
    *out_len = len;
}

/* Bash(<content>): content is "<words>:*" (a prefix rule) or an exact command. */
static bool bash_content_matches(const char *content, size_t len, const char *cmd)
{
    const char *c, *t;
    size_t clen, tlen;

    if (len >= 2 && content[len - 2] == ':' && content[len - 1] == '*') {
        /* A prefix rule never matches a command line that could do more than it says. */
        if (!rules_command_is_simple(cmd))
            return false;
        return words_match(content, len - 2, cmd, false);
    }
    /* An exact rule: the same bytes (after trimming), which also covers a rule that
     * spells out a compound line itself; else the same words when neither side has
     * an operator. */
    trim(content, len, &c, &clen);
    trim(cmd, strlen(cmd), &t, &tlen);
    if (clen == 0)
        return false;
    if (clen == tlen && memcmp(c, t, clen) == 0)
        return true;
    if (!rules_command_is_simple(cmd) || !simple_n(c, clen))
        return false;
    return words_match(c, clen, cmd, true);
}

/* ToolName({...}): the tool's input is that JSON object (compared as JSON). */
static bool input_matches(const char *content, size_t len, const json_t *input)
{
    if (len == 0 || content[0] != '{' || !json_is_object(input))
        return false;
    json_t *want = json_loadb(content, len, JSON_REJECT_DUPLICATES, NULL);
    bool same = want && json_equal(want, (json_t *)input);
    json_decref(want);
    return same;
}

bool rules_match(const char *rule, const char *tool_name, const json_t *input)
{
    if (!rule || !tool_name || !*rule || !*tool_name)
        return false;

    const char *paren = strchr(rule, '(');
    if (!paren)
        return strcmp(rule, tool_name) == 0;

    /* ToolName(content): a Bash command pattern, or another tool's exact input. */
    size_t name_len = (size_t)(paren - rule);
    size_t rule_len = strlen(rule);
    if (name_len != strlen(tool_name) || memcmp(rule, tool_name, name_len) != 0)
        return false;
    if (rule[rule_len - 1] != ')' || rule_len < name_len + 3)
        return false;
    if (strcmp(tool_name, "Bash") != 0)
        return input_matches(paren + 1, rule_len - name_len - 2, input);

    const char *cmd = bash_command(input);
    if (!cmd)
        return false;
    return bash_content_matches(paren + 1, rule_len - name_len - 2, cmd);
}

bool rules_match_any(char *const *rules, size_t n, const char *tool_name, const json_t *input)
{
    for (size_t i = 0; i < n; i++)
        if (rules_match(rules[i], tool_name, input))
            return true;
    return false;
}

bool rules_tool_is_interactive(const char *tool_name)
{
    return tool_name &&
           (strcmp(tool_name, "AskUserQuestion") == 0 || strcmp(tool_name, "ExitPlanMode") == 0);
}

enum rules_verdict rules_decide(const struct rules_policy *p, const char *tool_name,
                                const json_t *input)
{
    if (rules_match_any(p->disallowed, p->n_disallowed, tool_name, input))
        return RULES_DENY;
    if (rules_tool_is_interactive(tool_name))
        return RULES_ASK;
    if (p->skip_permissions)
        return RULES_ALLOW;
    if (rules_match_any(p->allowed, p->n_allowed, tool_name, input) ||
        rules_match_any(p->remembered, p->n_remembered, tool_name, input))
        return RULES_ALLOW;
    return RULES_ASK;
}

/* The first word of a simple command, for its prefix rule. */
static char *bash_prefix_rule(const char *cmd, const char **why)
{
    const char *p = cmd, *end = cmd + strlen(cmd), *w;
    size_t len;

    if (!rules_command_is_simple(cmd)) {
        *why = "a command line that chains, substitutes or redirects has no prefix rule";
        return NULL;
    }
    if (!next_word(&p, end, &w, &len)) {
        *why = "the command is empty";
        return NULL;
    }
    /* A word ending in ":" would make "Bash(w::*)": legal, but nobody means that. */
    if (len >= 2 && w[len - 1] == '*' && w[len - 2] == ':') {
        *why = "the command's first word ends in \":*\"";
        return NULL;
    }
    char *out = malloc(len + 9);
    if (!out) {
        *why = "out of memory";
        return NULL;
    }
    snprintf(out, len + 9, "Bash(%.*s:*)", (int)len, w);
    return out;
}

/* Bash(<command>) for exactly cmd. */
static char *bash_exact_rule(const char *cmd, const char **why)
{
    const char *c;
    size_t len;

    trim(cmd, strlen(cmd), &c, &len);
    if (len == 0) {
        *why = "the command is empty";
        return NULL;
    }
    if (len >= 2 && c[len - 2] == ':' && c[len - 1] == '*') {
        *why = "a command ending in \":*\" cannot be remembered exactly (the rule would "
               "read as a prefix rule)";
        return NULL;
    }
    size_t n = len + 7;
    char *out = n <= RULES_MAX_LEN + 1 ? malloc(n) : NULL;
    if (!out) {
        *why = n > RULES_MAX_LEN + 1 ? "the rule would be too long" : "out of memory";
        return NULL;
    }
    snprintf(out, n, "Bash(%.*s)", (int)len, c);
    return out;
}

/* ToolName(<input as compact JSON, keys sorted>). */
static char *input_exact_rule(const char *tool_name, const json_t *input, const char **why)
{
    if (!json_is_object(input)) {
        *why = "the tool's input is not a JSON object";
        return NULL;
    }
    char *text = json_dumps(input, JSON_COMPACT | JSON_SORT_KEYS);
    size_t tl = strlen(tool_name), jl = text ? strlen(text) : 0, n = tl + jl + 3;
    char *out = text && n <= RULES_MAX_LEN + 1 ? malloc(n) : NULL;
    if (out) {
        memcpy(out, tool_name, tl);
        out[tl] = '(';
        memcpy(out + tl + 1, text, jl);
        memcpy(out + tl + 1 + jl, ")", 2);
    } else
        *why = text ? "the rule would be too long" : "out of memory";
    free(text);
    return out;
}

char *rules_derive(enum rules_form form, const char *tool_name, const json_t *input,
                   const char **why)
{
    if (!tool_name || !*tool_name || strchr(tool_name, '(')) {
        *why = "the request has no usable tool name";
        return NULL;
    }
    if (rules_tool_is_interactive(tool_name)) {
        *why = "an interactive tool always asks and cannot be remembered";
        return NULL;
    }
    if (strcmp(tool_name, "Bash") == 0) {
        const char *cmd = bash_command(input);
        if (!cmd) {
            *why = "the request has no Bash command";
            return NULL;
        }
        return form == RULES_FORM_PREFIX ? bash_prefix_rule(cmd, why) : bash_exact_rule(cmd, why);
    }
    if (form == RULES_FORM_PREFIX) {
        *why = "only Bash commands have a prefix rule";
        return NULL;
    }
    return input_exact_rule(tool_name, input, why);
}

bool rules_remember_check(const char *rule, const char *tool_name, const json_t *input,
                          const char **why)
{
    if (!rule || !tool_name || !*rule || strlen(rule) > RULES_MAX_LEN) {
        *why = "the rule is empty or too long";
        return false;
    }
    if (rules_tool_is_interactive(tool_name)) {
        *why = "an interactive tool always asks and cannot be remembered";
        return false;
    }
    if (!strchr(rule, '(')) {
        *why = "a bare tool name would allow every use of the tool, not the one approved";
        return false;
    }
    if (!rules_match(rule, tool_name, input)) {
        *why = "the rule does not match the permission request";
        return false;
    }
    /* Bash(<the command>) of a command ending in ":*" reads as a prefix rule: a client
     * that meant "exactly this" (the old web page did) would get more than it asked. */
    const char *cmd = strcmp(tool_name, "Bash") == 0 ? bash_command(input) : NULL;
    if (cmd) {
        const char *c, *t;
        size_t clen, tlen, rlen = strlen(rule);
        trim(rule + 5, rlen - 6, &c, &clen);
        trim(cmd, strlen(cmd), &t, &tlen);
        if (clen == tlen && memcmp(c, t, clen) == 0 && tlen >= 2 && t[tlen - 2] == ':' &&
            t[tlen - 1] == '*') {
            *why = "Bash(<command>) of a command ending in \":*\" would be a prefix rule";
            return false;
        }
    }
    /* Matching is not enough for other tools only in theory (their one form is the
     * exact input); for Bash the matcher's two forms are exactly the two allowed here:
     * an exact command (the same words or bytes) or a word-exact prefix of a simple
     * command. */
    return true;
}
