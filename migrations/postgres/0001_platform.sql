-- Platform tables: API keys and the audit log (crates/platform/src/auth.rs, audit.rs).
--
-- Conventions (crates/platform/src/db.rs): ids TEXT (UUIDv7, hyphenated), instants BIGINT
-- microseconds since the Unix epoch (UTC), JSON documents TEXT. The same tables exist on
-- SQLite (migrations/sqlite) so one code path serves both backends.

-- API keys. A key reads `afk_<key_id>_<secret>`; only the SHA-256 of the secret is kept, so
-- the table does not yield working keys. Keys are revoked, never deleted: audit rows name them.
CREATE TABLE api_keys (
    key_id        TEXT   PRIMARY KEY,       -- UUIDv7; not secret
    tenant_id     TEXT   NOT NULL,
    role          TEXT   NOT NULL
        CHECK (role IN ('admin', 'supervisor', 'specialist', 'partner', 'service')),
    clinic_ids    TEXT   NOT NULL DEFAULT '[]',  -- JSON array of clinic ids; [] = every clinic
    secret_sha256 TEXT   NOT NULL,          -- lowercase hex SHA-256 of the secret part
    label         TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT NULL               -- NULL while the key is valid
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- One row per authenticated call (health and reflection excepted). Never request or response
-- bodies: they carry PHI. object_ids names what the call touched (claim ids, ...).
CREATE TABLE audit_log (
    id          TEXT   PRIMARY KEY,         -- UUIDv7
    tenant_id   TEXT   NOT NULL,
    key_id      TEXT   NOT NULL,
    role        TEXT   NOT NULL,
    method      TEXT   NOT NULL,            -- full gRPC method: /package.Service/Method
    object_ids  TEXT   NOT NULL DEFAULT '[]',  -- JSON array of ids
    outcome     TEXT   NOT NULL,            -- gRPC status code name: OK, NOT_FOUND, ...
    trace_id    TEXT   NOT NULL DEFAULT '', -- W3C trace id, to find the call's logs and spans
    occurred_at BIGINT NOT NULL             -- when the call started (the injected clock)
);
-- Operators read a tenant's log by time.
CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, occurred_at);

-- Append-only, enforced here rather than trusted to the code: UPDATE, DELETE and TRUNCATE
-- raise. (A role that owns the table can still drop the triggers; production should run the
-- services as a role granted only INSERT and SELECT on audit_log. Retention purges, when a
-- policy allows them, are a deliberate operator migration.)
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
