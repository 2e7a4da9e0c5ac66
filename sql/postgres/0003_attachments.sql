-- postgres/0003_attachments.sql: files uploaded into a session; the same table as
-- sql/0003_attachments.sql (SQLite), in PostgreSQL's types.
--
-- Applied by store_migrate (store_pg.c) inside one transaction, under an advisory
-- lock, together with the bump of chatgw_schema.version, so this file must not open
-- or close transactions. An attachment goes with its session (ON DELETE CASCADE).

CREATE TABLE attachments (
    id          text    PRIMARY KEY NOT NULL,
    session_id  text    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id     bigint  NOT NULL REFERENCES users (id),
    name        text    NOT NULL,
    mime_type   text    NOT NULL,
    size        bigint  NOT NULL CHECK (size >= 0),
    data        bytea   NOT NULL,
    created_ms  bigint  NOT NULL,
    -- Insertion order, for uploads in the same millisecond (SQLite uses its rowid).
    n           bigserial NOT NULL
);

CREATE INDEX attachments_session ON attachments (session_id, created_ms);
