/* test_rules.c: strict permission rule matching (DESIGN §8) and the automatic verdicts. */
#include <jansson.h>
#include <stdlib.h>

#include "core/rules.h"
#include "tap.h"

/* Does rule match the Bash command cmd? */
static bool bash(const char *rule, const char *cmd)
{
    json_t *input = json_pack("{s:s, s:s}", "command", cmd, "description", "test");
    bool m = rules_match(rule, "Bash", input);
    json_decref(input);
    return m;
}

static void prefix_rules(void)
{
    ok(bash("Bash(git status:*)", "git status"), "prefix rule: the command itself");
    ok(bash("Bash(git status:*)", "git status --short"), "prefix rule: with arguments");
    ok(bash("Bash(git status:*)", "  git   status\t-s  "), "prefix rule: blanks may differ");
    ok(bash("Bash(git:*)", "git log -1"), "one-word prefix");
    ok(!bash("Bash(git:*)", "gitk"), "a word is not a prefix of a longer word");
    ok(!bash("Bash(git:*)", "git-upload-pack x"), "git does not match git-upload-pack");
    ok(!bash("Bash(git status:*)", "git statusx"), "last word must match whole");
    ok(!bash("Bash(git status:*)", "git"), "a shorter command does not match");
    ok(!bash("Bash(git status:*)", "git log"), "another subcommand does not match");
    ok(!bash("Bash(git status:*)", "GIT status"), "case matters");
    ok(!bash("Bash(git status:*)", "FOO=1 git status"), "an environment prefix does not match");
    ok(!bash("Bash(git status:*)", "sudo git status"), "sudo in front does not match");
    ok(!bash("Bash(npm test:*)", "npm tests"), "npm test is not npm tests");
}

static void chaining_rejected(void)
{
    static const char *const bad[] = {
        "git status; rm -rf /",   "git status && rm -rf /", "git status || rm -rf /",
        "git status | sh",        "git status & rm -rf /",  "git status `rm -rf /`",
        "git status $(rm -rf /)", "git status\nrm -rf /",   "git status\rrm -rf /",
        "git status > ~/.bashrc", "git status >> log",      "git status < /etc/passwd",
        "git status <(rm -rf /)", "git status 2>&1",        "git status;",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ok(!bash("Bash(git status:*)", bad[i]), "prefix rule rejects chaining: %zu", i);
    ok(bash("Bash(git status:*)", "git status $HOME"), "a plain $ is not substitution");
    ok(rules_command_is_simple("ls -la"), "simple command");
    ok(!rules_command_is_simple("a;b"), "; is not simple");
    ok(!rules_command_is_simple("echo $(id)"), "$( is not simple");
}

static void exact_rules(void)
{
    ok(bash("Bash(npm test)", "npm test"), "exact rule: same command");
    ok(bash("Bash(npm test)", " npm  test "), "exact rule: blanks may differ");
    ok(!bash("Bash(npm test)", "npm test --watch"), "exact rule: no extra words");
    ok(!bash("Bash(npm test)", "npm"), "exact rule: no fewer words");
    ok(!bash("Bash(npm test)", "npm test; rm -rf /"), "exact rule: no chaining");
    ok(bash("Bash(make && make install)", "make && make install"),
       "exact rule spelling a compound line: the same bytes match");
    ok(!bash("Bash(make && make install)", "make &&  make install"),
       "a compound exact rule needs the same bytes");
    ok(!bash("Bash(make && make install)", "make && make install; rm -rf /"),
       "a compound exact rule does not match more");
}

static void tool_rules(void)
{
    json_t *input = json_pack("{s:s}", "file_path", "/etc/passwd");
    ok(rules_match("Read", "Read", input), "plain tool name");
    ok(!rules_match("Read", "Write", input), "plain tool name: another tool");
    ok(!rules_match("Rea", "Read", input), "plain tool name: a prefix is not enough");
    ok(!rules_match("read", "Read", input), "plain tool name: case matters");
    ok(rules_match("Bash", "Bash", input), "plain Bash allows every command");
    ok(rules_match("mcp__srv__tool", "mcp__srv__tool", NULL), "MCP tool names");
    ok(!rules_match("Read(/etc/**)", "Read", input), "patterns of other tools match nothing");
    ok(!rules_match("Bash(git:*)", "Read", input), "a Bash rule does not match another tool");
    json_decref(input);

    json_t *s = json_string("git status");
    ok(rules_match("Bash(git:*)", "Bash", s), "Bash input as a plain string");
    json_decref(s);
}

static void weird_input(void)
{
    json_t *empty = json_object();
    json_t *num = json_pack("{s:i}", "command", 42);
    ok(!rules_match("Bash(git:*)", "Bash", empty), "no command");
    ok(!rules_match("Bash(git:*)", "Bash", num), "command is not a string");
    ok(!rules_match("Bash(git:*)", "Bash", NULL), "no input");
    ok(!rules_match(NULL, "Bash", empty), "NULL rule");
    ok(!rules_match("", "Bash", empty), "empty rule");
    ok(!rules_match("Bash", NULL, empty), "NULL tool");
    ok(!rules_match("Bash", "", empty), "empty tool");
    ok(!bash("Bash()", "git"), "empty parentheses");
    ok(!bash("Bash(:*)", "git"), "empty prefix");
    ok(!bash("Bash(   :*)", "git"), "blank prefix");
    ok(!bash("Bash(git:*", "git"), "missing closing parenthesis");
    ok(!bash("Bash(", "git"), "just an opening parenthesis");
    ok(!bash("Bash(git:*)x", "git"), "trailing garbage");
    ok(!bash("Bashx(git:*)", "git"), "another tool name");
    ok(!bash("Bash(git:*)", ""), "empty command");
    ok(!bash("Bash(git:*)", "   "), "blank command");
    ok(!bash("Bash(git status; rm:*)", "git status; rm -rf /"),
       "a rule with an operator never matches a chained command");
    json_decref(empty);
    json_decref(num);
}

static void verdicts(void)
{
    char *allowed[] = {"Bash(git status:*)", "Read"};
    char *disallowed[] = {"Bash(rm:*)", "WebFetch"};
    char *remembered[] = {"Bash(npm test:*)"};
    struct rules_policy p = {
        .allowed = allowed,
        .n_allowed = 2,
        .disallowed = disallowed,
        .n_disallowed = 2,
        .remembered = remembered,
        .n_remembered = 1,
    };
    json_t *git = json_pack("{s:s}", "command", "git status");
    json_t *rm = json_pack("{s:s}", "command", "rm -rf build");
    json_t *npm = json_pack("{s:s}", "command", "npm test -- --watch");
    json_t *chain = json_pack("{s:s}", "command", "git status && curl x | sh");
    json_t *none = json_object();

    is_int(rules_decide(&p, "Bash", git), RULES_ALLOW, "allowedTools allow");
    is_int(rules_decide(&p, "Bash", rm), RULES_DENY, "disallowedTools deny");
    is_int(rules_decide(&p, "Bash", npm), RULES_ALLOW, "remembered rules allow");
    is_int(rules_decide(&p, "Bash", chain), RULES_ASK, "chained commands are asked");
    is_int(rules_decide(&p, "Read", none), RULES_ALLOW, "plain allowed tool");
    is_int(rules_decide(&p, "WebFetch", none), RULES_DENY, "plain disallowed tool");
    is_int(rules_decide(&p, "Write", none), RULES_ASK, "anything else is asked");
    p.skip_permissions = true;
    is_int(rules_decide(&p, "Write", none), RULES_ALLOW, "skipPermissions allows");
    is_int(rules_decide(&p, "Bash", rm), RULES_DENY, "skipPermissions still obeys disallowedTools");
    is_int(rules_decide(&p, "AskUserQuestion", none), RULES_ASK,
           "interactive tools are always asked");
    char *ask[] = {"AskUserQuestion", "ExitPlanMode"};
    p.allowed = ask;
    p.skip_permissions = false;
    is_int(rules_decide(&p, "ExitPlanMode", none), RULES_ASK,
           "interactive tools are asked even when allowed");
    p.disallowed = ask;
    is_int(rules_decide(&p, "ExitPlanMode", none), RULES_DENY, "but can be denied");
    struct rules_policy empty = {0};
    is_int(rules_decide(&empty, "Bash", git), RULES_ASK, "no rules: ask");
    ok(rules_tool_is_interactive("AskUserQuestion") && rules_tool_is_interactive("ExitPlanMode") &&
           !rules_tool_is_interactive("Bash") && !rules_tool_is_interactive(NULL),
       "interactive tools");

    json_decref(git);
    json_decref(rm);
    json_decref(npm);
    json_decref(chain);
    json_decref(none);
}

/* rules_derive of one Bash command; "" when refused. */
static void derive_is(enum rules_form form, const char *cmd, const char *want, const char *name)
{
    json_t *input = json_pack("{s:s}", "command", cmd);
    const char *why = NULL;
    char *got = rules_derive(form, "Bash", input, &why);
    is_str(got ? got : "", want, "%s", name);
    ok(got || why, "%s: a reason when refused", name);
    free(got);
    json_decref(input);
}

static bool remember_ok(const char *rule, const char *tool, const char *cmd)
{
    json_t *input = json_pack("{s:s}", "command", cmd);
    const char *why = NULL;
    bool r = rules_remember_check(rule, tool, input, &why);
    json_decref(input);
    return r;
}

/* Issue 11 finding 3: what may be remembered covers exactly the approved request. */
static void remember(void)
{
    derive_is(RULES_FORM_EXACT, "  git status ", "Bash(git status)", "exact: trimmed command");
    derive_is(RULES_FORM_EXACT, "touch :*", "", "exact: a command ending in :* is refused");
    derive_is(RULES_FORM_EXACT, "   ", "", "exact: blank command");
    derive_is(RULES_FORM_EXACT, "make && make install", "Bash(make && make install)",
              "exact: a compound line, spelled out");
    derive_is(RULES_FORM_PREFIX, "git status -s", "Bash(git:*)", "prefix: the first word");
    derive_is(RULES_FORM_PREFIX, "git status; rm -rf /", "", "prefix: never a chained command");
    derive_is(RULES_FORM_PREFIX, "touch:* x", "", "prefix: a first word ending in :*");

    ok(!remember_ok("Bash", "Bash", "touch a"), "remember: a bare Bash is refused");
    ok(!remember_ok("Read", "Read", "x"), "remember: a bare tool name is refused");
    ok(!remember_ok("Bash(rm:*)", "Bash", "touch a"), "remember: another command");
    ok(!remember_ok("Bash(touch a b)", "Bash", "touch a"), "remember: a longer exact rule");
    ok(!remember_ok("Bash(touch:*)", "Bash", "touch a; rm b"), "remember: a chained command");
    ok(!remember_ok("Bash(touch :*)", "Bash", "touch :*"),
       "remember: Bash(<cmd>) of a command ending in :* (the reported case)");
    ok(remember_ok("Bash(touch:*)", "Bash", "touch :*"), "remember: an explicit prefix of it");
    ok(remember_ok("Bash(touch a)", "Bash", "touch a"), "remember: the exact command");
    ok(remember_ok("Bash(git  status:*)", "Bash", "git status -s"), "remember: a word prefix");
    ok(!remember_ok("Bash(git stat:*)", "Bash", "git status"), "remember: not a word prefix");
    ok(!remember_ok("Bash(touch a)", "AskUserQuestion", "touch a"),
       "remember: never an interactive tool");

    /* Other tools: their exact input, as JSON. */
    json_t *in = json_pack("{s:s, s:i}", "file_path", "/srv/p/a.txt", "limit", 10);
    const char *why = NULL;
    char *rule = rules_derive(RULES_FORM_EXACT, "Read", in, &why);
    is_str(rule ? rule : "", "Read({\"file_path\":\"/srv/p/a.txt\",\"limit\":10})",
           "exact Read: compact JSON, sorted keys");
    ok(rule && rules_match(rule, "Read", in), "it matches its request");
    ok(rule && rules_remember_check(rule, "Read", in, &why), "and may be remembered");
    ok(rules_match("Read({\"limit\": 10, \"file_path\": \"/srv/p/a.txt\"})", "Read", in),
       "key order and blanks do not matter");
    json_t *other = json_pack("{s:s, s:i}", "file_path", "/etc/passwd", "limit", 10);
    ok(rule && !rules_match(rule, "Read", other), "another input does not match");
    ok(rule && !rules_match(rule, "Write", in), "another tool does not match");
    ok(!rules_derive(RULES_FORM_PREFIX, "Read", in, &why), "no prefix form for Read");
    ok(!rules_match("Read({\"file_path\":", "Read", in), "malformed JSON matches nothing");
    free(rule);
    json_decref(in);
    json_decref(other);
}

int main(void)
{
    plan_lazy();
    prefix_rules();
    chaining_rejected();
    exact_rules();
    tool_rules();
    weird_input();
    verdicts();
    remember();
    return done_testing();
}
