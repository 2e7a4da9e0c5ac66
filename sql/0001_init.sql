-- 0001_init.sql: the first schema: users, tokens, sessions, messages, permission rules.
--
-- Applied by store_migrate inside one BEGIN IMMEDIATE transaction together with
-- PRAGMA user_version = 1, so this file must not open or close transactions.
-- Times are integer milliseconds since the epoch (UTC). Project roots are
-- configuration, not data, so they have no table.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    disabled    INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_ms  INTEGER NOT NULL
) STRICT;

-- Only the SHA-256 of a token is kept, never the token itself.
CREATE TABLE tokens (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    public_id     TEXT    NOT NULL UNIQUE,
    hash          BLOB    NOT NULL CHECK (length(hash) = 32),
    label         TEXT    NOT NULL DEFAULT '',
    revoked       INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    created_ms    INTEGER NOT NULL,
    last_used_ms  INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Listing a user's tokens, and the cascade when a user goes.
CREATE INDEX tokens_user ON tokens (user_id, created_ms);

-- A user with history is disabled, not deleted: no cascade from users here.
CREATE TABLE sessions (
    id            TEXT    PRIMARY KEY NOT NULL,
    owner         INTEGER NOT NULL REFERENCES users (id),
    provider      TEXT    NOT NULL,
    native_id     TEXT,
    project_path  TEXT    NOT NULL,
    name          TEXT    NOT NULL DEFAULT '',
    archived      INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
) STRICT;

-- GET /sessions: one owner, one archived state, newest activity first.
CREATE INDEX sessions_owner ON sessions (owner, archived, updated_ms DESC, id);

-- Persisted events; the primary key orders them by seq for range reads.
CREATE TABLE messages (
    session_id  TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq > 0),
    kind        TEXT    NOT NULL,
    json        TEXT    NOT NULL,
    PRIMARY KEY (session_id, seq)
) STRICT;

-- Remembered permission rules ("rememberEntry"), per user and project.
CREATE TABLE rules (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_path  TEXT    NOT NULL,
    rule          TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL,
    UNIQUE (user_id, project_path, rule)
) STRICT;
