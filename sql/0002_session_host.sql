-- 0002_session_host.sql: a session's home host (DESIGN 12, "Home host").
--
-- host is the host.id of the chatgw.fcgi that created the session (its projectPath was
-- checked there, and its runners start there unless projects.shared is on). Sessions
-- made before this migration keep NULL: "no home", they run on whichever host accepts
-- the send, as they always did on one host (doc/internals.md, "Home hosts").
-- Applied by store_migrate inside the migration's transaction: no BEGIN/COMMIT here.

ALTER TABLE sessions ADD COLUMN host TEXT;
