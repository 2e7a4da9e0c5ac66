/* chat_perm.c: how `chatgwctl chat` answers a permission request: rules, flags, or a prompt. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl/chat.h"

/* A command line a prefix rule must never cover (the server's rule for "prefix"). */
static bool is_compound(const char *command)
{
    return strpbrk(command, ";&|`<>\n") != NULL || strstr(command, "$(") != NULL;
}

bool chat_rule_matches(const char *rule, const char *tool, const char *command, const char *label)
{
    if (!rule || !tool)
        return false;
    const char *open = strchr(rule, '(');
    if (!open)
        return strcmp(rule, tool) == 0; /* a bare tool name: every use of it */
    size_t nlen = (size_t)(open - rule), rlen = strlen(rule);
    if (nlen != strlen(tool) || strncmp(rule, tool, nlen) != 0 || rlen < nlen + 2 ||
        rule[rlen - 1] != ')')
        return false;
    const char *arg = open + 1;
    size_t alen = rlen - nlen - 2;
    if (command && alen >= 2 && strncmp(arg + alen - 2, ":*", 2) == 0) {
        size_t plen = alen - 2; /* "Bash(git:*)": git with any arguments, or none */
        if (is_compound(command) || strncmp(command, arg, plen) != 0)
            return false;
        return command[plen] == '\0' || command[plen] == ' ';
    }
    return strcmp(rule, label) == 0;
}

/* Asks on /dev/tty. Returns the answer; CHAT_NO_ANSWER when the read was interrupted
 * (Ctrl-C, which aborts the run). */
static enum chat_answer ask_tty(int fd, const char *label)
{
    char prompt[1024];
    int n = snprintf(prompt, sizeof prompt, "Allow %s? [y/N/a(lways)] ", label);
    if (n < 0 || write(fd, prompt, (size_t)n < sizeof prompt ? (size_t)n : sizeof prompt - 1) < 0)
        return CHAT_DENY;
    char line[64];
    size_t len = 0;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            return CHAT_NO_ANSWER;
        if (r <= 0)
            return CHAT_DENY; /* the terminal went away */
        if (ch == '\n')
            break;
        if (len + 1 < sizeof line)
            line[len++] = ch;
    }
    line[len] = '\0';
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == 'y' || *p == 'Y')
        return CHAT_ALLOW;
    if (*p == 'a' || *p == 'A')
        return CHAT_ALLOW_ALWAYS;
    return CHAT_DENY;
}

enum chat_answer chat_perm_decide(const struct chat_policy *p, const char *tool,
                                  const json_t *input, const char **why)
{
    const char *command = NULL;
    if (tool && strcmp(tool, "Bash") == 0)
        command = json_string_value(json_object_get(input, "command"));
    char label[512];
    chat_tool_label(tool, input, label, sizeof label);

    for (size_t i = 0; i < p->ndeny; i++) {
        if (chat_rule_matches(p->deny[i], tool, command, label)) {
            *why = "a --deny rule";
            return CHAT_DENY;
        }
    }
    for (size_t i = 0; i < p->nallow; i++) {
        if (chat_rule_matches(p->allow[i], tool, command, label))
            return CHAT_ALLOW;
    }
    if (p->deny_all) {
        *why = "--deny-all";
        return CHAT_DENY;
    }
    if (p->allow_all)
        return CHAT_ALLOW;

    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        *why = "no terminal to ask on (use --allow RULE or --allow-all)";
        return CHAT_DENY;
    }
    enum chat_answer a = ask_tty(fd, label);
    close(fd);
    *why = "answered on the terminal";
    return a;
}
