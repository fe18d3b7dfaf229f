-- Claims service tables. Conventions (crates/platform/src/db.rs): ids are TEXT UUIDv7,
-- instants BIGINT microseconds UTC, dates TEXT 'YYYY-MM-DD', money BIGINT cents.
-- Every row carries tenant_id and every query filters on it; only the claims service reads
-- or writes these tables.

CREATE TABLE claims (
    id                          TEXT PRIMARY KEY,
    tenant_id                   TEXT NOT NULL,
    clinic_id                   TEXT NOT NULL,
    -- Patient control number (CLM01): how payers' 835/277 files name the claim.
    external_id                 TEXT NOT NULL,
    patient_id                  TEXT NOT NULL,
    patient_first_name          TEXT NOT NULL,
    patient_last_name           TEXT NOT NULL,
    patient_birth_date          TEXT NOT NULL,
    member_id                   TEXT NOT NULL,
    payer_id                    TEXT NOT NULL,
    payer_name                  TEXT NOT NULL,
    rendering_npi               TEXT NOT NULL,
    rendering_name              TEXT NOT NULL,
    rendering_credential        TEXT,
    billing_npi                 TEXT NOT NULL,
    billing_name                TEXT NOT NULL,
    -- ICD-10-CM codes without dots, principal first, comma separated.
    diagnoses                   TEXT NOT NULL,
    prior_authorization_number  TEXT,
    -- CLM05-3: '1' original, '7' replacement, '8' void.
    frequency                   TEXT NOT NULL,
    original_claim_id           TEXT,
    status                      TEXT NOT NULL,
    submission_date             TEXT,
    first_service_date          TEXT NOT NULL,
    last_service_date           TEXT NOT NULL,
    total_charge_cents          BIGINT NOT NULL CHECK (total_charge_cents >= 0),
    balance_cents               BIGINT NOT NULL,
    -- Optimistic concurrency and event ordering: +1 on every change.
    version                     BIGINT NOT NULL,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL
);

-- One original claim per patient control number and clinic; replacements and voids reuse it.
CREATE UNIQUE INDEX claims_external_id ON claims (tenant_id, clinic_id, external_id) WHERE frequency = '1';
-- ListClaims walks newest first (UUIDv7 ids sort by creation) within a tenant.
CREATE INDEX claims_tenant_id ON claims (tenant_id, id);
CREATE INDEX claims_tenant_status ON claims (tenant_id, status, id);
CREATE INDEX claims_tenant_payer ON claims (tenant_id, payer_id, id);

CREATE TABLE claim_lines (
    claim_id            TEXT NOT NULL REFERENCES claims (id),
    tenant_id           TEXT NOT NULL,
    line_number         INTEGER NOT NULL,
    service_date        TEXT NOT NULL,
    procedure_code      TEXT NOT NULL,
    -- Up to four modifiers, comma separated, in billed order.
    modifiers           TEXT NOT NULL,
    units               INTEGER NOT NULL,
    minutes             INTEGER NOT NULL,
    charge_cents        BIGINT NOT NULL CHECK (charge_cents >= 0),
    place_of_service    TEXT NOT NULL,
    -- 1-based pointers into claims.diagnoses, comma separated.
    diagnosis_pointers  TEXT NOT NULL,
    PRIMARY KEY (claim_id, line_number)
);

-- Every status a claim has had; version 1 is its creation.
CREATE TABLE claim_status_history (
    claim_id     TEXT NOT NULL REFERENCES claims (id),
    tenant_id    TEXT NOT NULL,
    version      BIGINT NOT NULL,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    changed_at   BIGINT NOT NULL,
    PRIMARY KEY (claim_id, version)
);

-- Idempotency of CreateClaim / ImportClaims: a request id creates at most one claim.
-- request_hash (SHA-256 of the request's claim) tells a retry from a reused id.
CREATE TABLE claim_requests (
    tenant_id     TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    claim_id      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, request_id)
);
