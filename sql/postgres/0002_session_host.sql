-- postgres/0002_session_host.sql: a session's home host; the same column as
-- sql/0002_session_host.sql (SQLite). NULL for sessions made before it: "no home", they
-- run on whichever host accepts the send. Applied by store_migrate inside the
-- migration's transaction: no BEGIN/COMMIT here.

ALTER TABLE sessions ADD COLUMN host text;
