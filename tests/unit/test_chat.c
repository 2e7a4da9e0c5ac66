/* test_chat.c: chatgwctl chat's permission rules (--allow/--deny) and tool labels. */
#include "ctl/chat.h"
#include "tap.h"

#include <string.h>

static bool covers(const char *rule, const char *tool, const char *command)
{
    json_t *input = command ? json_pack("{s:s}", "command", command) : json_object();
    char label[512];
    chat_tool_label(tool, input, label, sizeof label);
    bool r = chat_rule_matches(rule, tool, command, label);
    json_decref(input);
    return r;
}

int main(void)
{
    plan_lazy();
    char label[64];
    json_t *in = json_pack("{s:s, s:s}", "command", "ls -l", "description", "list");
    chat_tool_label("Bash", in, label, sizeof label);
    is_str(label, "Bash(ls -l)", "Bash: its command");
    json_decref(in);
    in = json_pack("{s:s}", "file_path", "/etc/hosts");
    chat_tool_label("Read", in, label, sizeof label);
    is_str(label, "Read(/etc/hosts)", "a file tool: its path");
    json_decref(in);
    in = json_pack("{s:s, s:i}", "pattern", "x", "a", 1);
    chat_tool_label("Grep", in, label, sizeof label);
    is_str(label, "Grep({\"a\":1,\"pattern\":\"x\"})", "another tool: its input as JSON");
    json_decref(in);
    in = json_pack("{s:s}", "command", "echo a\n\033[2Jb");
    chat_tool_label("Bash", in, label, sizeof label);
    ok(strchr(label, '\033') == NULL && strchr(label, '\n') == NULL,
       "control characters never reach the terminal: %s", label);
    json_decref(in);

    ok(covers("Bash", "Bash", "rm -rf x"), "a bare tool name covers every use");
    ok(!covers("Bash", "Read", NULL), "... of that tool only");
    ok(!covers("Bas", "Bash", "ls"), "... by its whole name");
    ok(covers("Bash(ls -l)", "Bash", "ls -l"), "an exact rule covers that command");
    ok(!covers("Bash(ls -l)", "Bash", "ls -la"), "... and no other");
    ok(!covers("Bash(ls)", "Bash", "ls -l"), "... not a longer one");
    ok(covers("Bash(git:*)", "Bash", "git log -1"), "a prefix rule covers the word and arguments");
    ok(covers("Bash(git:*)", "Bash", "git"), "... and the bare word");
    ok(!covers("Bash(git:*)", "Bash", "gitk"), "... not a longer word");
    ok(covers("Bash(git log:*)", "Bash", "git log --oneline"), "a prefix of several words");
    ok(!covers("Bash(git:*)", "Bash", "git log; rm -rf /"), "never a chained command");
    ok(!covers("Bash(git:*)", "Bash", "git $(rm x)"), "never a substitution");
    ok(!covers("Bash(git:*)", "Bash", "git log > /etc/x"), "never a redirection");
    ok(!covers("Bash(git:*)", "Bash", "git log\nrm x"), "never a second line");
    ok(!covers("Read(git:*)", "Read", NULL), "a prefix rule is Bash's only");
    ok(!covers("Bash(ls", "Bash", "ls"), "a malformed rule covers nothing");

    struct chat_policy p = {
        .allow = {"Bash(ls:*)"}, .nallow = 1, .deny = {"Bash(ls -R:*)"}, .ndeny = 1};
    const char *why = NULL;
    json_t *ls = json_pack("{s:s}", "command", "ls -l");
    json_t *lsr = json_pack("{s:s}", "command", "ls -R /");
    is_int(chat_perm_decide(&p, "Bash", ls, &why), CHAT_ALLOW, "an --allow rule allows");
    is_int(chat_perm_decide(&p, "Bash", lsr, &why), CHAT_DENY, "a --deny rule wins");
    is_str(why, "a --deny rule", "... and says so");
    p.nallow = p.ndeny = 0;
    p.deny_all = true;
    is_int(chat_perm_decide(&p, "Bash", ls, &why), CHAT_DENY, "--deny-all denies");
    p.deny_all = false;
    p.allow_all = true;
    is_int(chat_perm_decide(&p, "Bash", ls, &why), CHAT_ALLOW, "--allow-all allows");
    json_decref(ls);
    json_decref(lsr);
    return done_testing();
}
