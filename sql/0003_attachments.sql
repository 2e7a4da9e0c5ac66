-- 0003_attachments.sql: files uploaded into a session (POST /sessions/{id}/attachments),
-- kept in the store so that a runner on any host reads them by id.
--
-- Applied by store_migrate inside one BEGIN IMMEDIATE transaction together with
-- PRAGMA user_version = 3, so this file must not open or close transactions.
-- An attachment goes with its session (ON DELETE CASCADE).

CREATE TABLE attachments (
    id          TEXT    PRIMARY KEY NOT NULL,
    session_id  TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    name        TEXT    NOT NULL,
    mime_type   TEXT    NOT NULL,
    size        INTEGER NOT NULL CHECK (size >= 0),
    data        BLOB    NOT NULL,
    created_ms  INTEGER NOT NULL
) STRICT;

-- Listing, counting and summing the attachments of a session.
CREATE INDEX attachments_session ON attachments (session_id, created_ms);
