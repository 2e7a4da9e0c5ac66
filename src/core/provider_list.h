/* provider_list.h: the providers chatgw knows, one row each: the one place that names them.
 *
 * CGW_PROVIDER_LIST(X) expands X(ID, name, bin, doc, flags, argv_prompt, modes...) once per
 * provider:
 *   ID     the enum constant is PROVIDER_<ID> (config.h)
 *   name   a C identifier: the API's "provider" value, the config key <name>.bin
 *          (CHATGW_<NAME>_BIN), and the runner adapter `<name>_provider`, defined in
 *          src/runner/providers/<name>.c
 *   bin    the default of <name>.bin (a name looked up in PATH, or an absolute path)
 *   doc    the description of <name>.bin (chatgwctl doctor, chatgw.conf(5))
 *   flags  PROVIDER_F_* below: what GET /providers says the provider supports
 *   argv_prompt  the longest prompt (bytes) a send may give it, 0 for no limit of its own:
 *          a CLI that takes the prompt as one argv word cannot take more than Linux's
 *          MAX_ARG_STRLEN (128 KiB) there; send answers 413 above it (doc/providers.md)
 *   modes  the permission modes a send may ask for (options.permissionMode)
 *
 * Everything else is derived from the rows: enum provider_id and the names (config.h),
 * the <name>.bin keys (config.c), the capability table (providers.c) and the runner's
 * adapter table (src/runner/provider.c). doc/internals.md lists what a new provider
 * touches. Headless CLIs without an approval channel have no PROVIDER_F_PERMISSIONS:
 * their modes are chosen up front (doc/providers.md); tests/unit/test_providers checks
 * that the flag matches the adapter (an `answer` function exactly when it is set).
 */
#ifndef CGW_CORE_PROVIDER_LIST_H
#define CGW_CORE_PROVIDER_LIST_H

#define PROVIDER_F_ABORT 1u       /* the run can be aborted (supportsAbort) */
#define PROVIDER_F_RESUME 2u      /* a later send resumes the native session (supportsResume) */
#define PROVIDER_F_PERMISSIONS 4u /* it asks for tool approvals (supportsPermissionRequests) */
#define PROVIDER_F_ATTACH 8u      /* a send may carry attachments (supportsAttachments) */

/* The prompt limit of the CLIs that take it on argv: under MAX_ARG_STRLEN (131072 bytes
 * for one word, with its NUL), with room for a "--prompt=" prefix. */
#define PROVIDER_ARGV_PROMPT_MAX (100 * 1024)

/* clang-format off */
#define CGW_PROVIDER_LIST(X)                                                                       \
    X(CLAUDE, claude, "claude", "Claude Code CLI (name looked up in PATH, or absolute path)",      \
      PROVIDER_F_ABORT | PROVIDER_F_RESUME | PROVIDER_F_PERMISSIONS | PROVIDER_F_ATTACH, 0,        \
      "default", "acceptEdits", "plan", "bypassPermissions", "dontAsk", "auto")                    \
    X(CODEX, codex, "codex", "OpenAI Codex CLI",                                                   \
      PROVIDER_F_ABORT | PROVIDER_F_RESUME | PROVIDER_F_ATTACH, PROVIDER_ARGV_PROMPT_MAX,          \
      "default", "acceptEdits", "plan", "bypassPermissions")                                       \
    X(CURSOR, cursor, "cursor-agent", "Cursor CLI", PROVIDER_F_ABORT | PROVIDER_F_RESUME,          \
      PROVIDER_ARGV_PROMPT_MAX, "default", "acceptEdits", "plan", "bypassPermissions")             \
    X(GEMINI, gemini, "gemini", "Gemini CLI",                                                      \
      PROVIDER_F_ABORT | PROVIDER_F_RESUME | PROVIDER_F_ATTACH, PROVIDER_ARGV_PROMPT_MAX,          \
      "default", "acceptEdits", "plan", "bypassPermissions")                                       \
    X(OPENCODE, opencode, "opencode", "OpenCode CLI",                                              \
      PROVIDER_F_ABORT | PROVIDER_F_RESUME | PROVIDER_F_ATTACH, PROVIDER_ARGV_PROMPT_MAX,          \
      "default", "bypassPermissions")
/* clang-format on */

#endif
