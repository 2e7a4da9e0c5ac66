/* rules.h: permission rules ("Bash(git status:*)", "Read") and their strict matching,
 * shared by the runner (which applies them) and chatgw.fcgi (which derives and checks
 * the rule a user asks to remember).
 *
 * A rule is one of
 *   ToolName            the tool, whatever its input ("Read", "mcp__srv__tool")
 *   Bash(<words>:*)     a Bash command whose first words are exactly <words> (word for
 *                       word, blanks between words may differ), never a command line
 *                       that chains, substitutes or redirects (see rules_command_is_simple)
 *   Bash(<command>)     exactly that Bash command (the same words, or the same bytes)
 *   ToolName({...})     another tool with exactly that input (a JSON object, compared
 *                       as JSON: key order and spacing do not matter)
 * Anything else (another tool with a non-JSON pattern, an empty or malformed rule)
 * matches nothing: a rule we do not understand must never allow something (DESIGN §8).
 * Every function is thread-safe; only the JSON form and rules_derive allocate.
 *
 * What may be remembered (POST /chat/permission) is narrower than what matches: only a
 * rule that covers the one tool use the user approved, see rules_remember_check.
 */
#ifndef CGW_RULES_H
#define CGW_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* True when cmd holds no shell operator that could run a second command or write a
 * file: none of ; & | ` $( <( >( > < newline or carriage return. */
bool rules_command_is_simple(const char *cmd);

/* True when rule matches a use of tool_name with input (borrowed; for Bash the command
 * is input.command, or input itself when it is a string). */
bool rules_match(const char *rule, const char *tool_name, const json_t *input);

/* True when any of the n rules matches. */
bool rules_match_any(char *const *rules, size_t n, const char *tool_name, const json_t *input);

/* True for tools that ask the user something (AskUserQuestion, ExitPlanMode): they
 * always go to the user and never time out. */
bool rules_tool_is_interactive(const char *tool_name);

/* What the run request and the remembered rules say about one tool use. */
struct rules_policy {
    bool skip_permissions; /* toolsSettings.skipPermissions */
    char *const *allowed;  /* toolsSettings.allowedTools */
    size_t n_allowed;
    char *const *disallowed; /* toolsSettings.disallowedTools */
    size_t n_disallowed;
    char *const *remembered; /* the owner's remembered rules for the project (allow) */
    size_t n_remembered;
};

enum rules_verdict { RULES_ASK = 0, RULES_ALLOW, RULES_DENY };

/* The decision without asking the user, in the order of doc/internals.md: a
 * disallowedTools match denies; skipPermissions, an allowedTools match or a
 * remembered rule allow; otherwise RULES_ASK. Interactive tools are never allowed
 * automatically (their answer is the user's input), only denied. */
enum rules_verdict rules_decide(const struct rules_policy *p, const char *tool_name,
                                const json_t *input);

/* The longest rule chatgw remembers, in bytes. */
#define RULES_MAX_LEN 8192

/* The forms of a rule derived from a permission request. */
enum rules_form {
    RULES_FORM_EXACT,  /* this tool with this input: Bash(<command>), Tool({...}) */
    RULES_FORM_PREFIX, /* Bash only: Bash(<first word>:*) */
};

/* Derives the rule of form for one tool use (input borrowed). Returns a new string
 * (free()), or NULL with *why set to a static sentence when the form cannot express
 * exactly that use: an interactive tool, a Bash command that is empty or ends in ":*"
 * (its exact rule would read as a prefix rule), a prefix of a command that chains or
 * redirects, an input that is not an object, a rule over RULES_MAX_LEN; or no memory. */
char *rules_derive(enum rules_form form, const char *tool_name, const json_t *input,
                   const char **why);

/* True when rule may be remembered for this tool use: it matches it, and it is either
 * its exact form or a Bash(<words>:*) prefix form whose words start the (simple)
 * command word for word. A bare tool name ("Bash"), a rule of another tool, a rule
 * over RULES_MAX_LEN, an interactive tool: false, with *why set (static). */
bool rules_remember_check(const char *rule, const char *tool_name, const json_t *input,
                          const char **why);

#endif
