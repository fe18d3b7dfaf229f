-- Remittance (835) and claim status (277/277CA) posting, owned by the claims service.
-- Conventions as in 0003: TEXT ids, BIGINT micros, TEXT dates, BIGINT cents; booleans are
-- INTEGER 0/1 so the same code reads them on SQLite.

-- What a payer last told us about the claim, kept on the claim for lists and exports.
ALTER TABLE claims ADD COLUMN payer_claim_control_number TEXT NOT NULL DEFAULT '';
ALTER TABLE claims ADD COLUMN paid_cents BIGINT NOT NULL DEFAULT 0;
-- Scrubber warnings found at intake, as JSON [{rule_id, severity, field, message}].
ALTER TABLE claims ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';
-- Corrections look up claims by patient control number regardless of frequency.
CREATE INDEX claims_tenant_external ON claims (tenant_id, external_id);
-- The scrubber reads a patient's earlier services (frequency limits, session counts).
CREATE INDEX claims_tenant_patient ON claims (tenant_id, patient_id);
-- "Has this claim been replaced?" (history and matching skip replaced originals).
CREATE INDEX claims_original ON claims (tenant_id, original_claim_id) WHERE original_claim_id IS NOT NULL;

-- Every X12 file received, stored before anything is posted from it: the raw bytes are the
-- evidence a billing team goes back to. One row per distinct content (SHA-256) per tenant.
CREATE TABLE x12_files (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,            -- '835' or '277'
    sha256       TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    content      BYTEA NOT NULL,
    received_at  BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    UNIQUE (tenant_id, sha256)
);

-- One posted 835 transaction. An ERA is posted once: (tenant, payer, payee, TRN02) is unique.
CREATE TABLE remittances (
    id                          TEXT PRIMARY KEY,
    tenant_id                   TEXT NOT NULL,
    file_id                     TEXT NOT NULL REFERENCES x12_files (id),
    transaction_control_number  TEXT NOT NULL,
    payer_id                    TEXT NOT NULL,
    payer_name                  TEXT NOT NULL,
    payee_id                    TEXT NOT NULL,
    trace_number                TEXT NOT NULL,   -- TRN02, the check/EFT number
    payment_cents               BIGINT NOT NULL, -- BPR02
    payment_method              TEXT NOT NULL,   -- BPR04
    payment_date                TEXT,            -- BPR16
    provider_adjustment_cents   BIGINT NOT NULL, -- sum of PLB amounts
    posted_at                   BIGINT NOT NULL,
    UNIQUE (tenant_id, payer_id, payee_id, trace_number)
);

-- One CLP of a remittance. claim_id is NULL when no claim matched (then unmatched_reason says
-- why): unmatched payments are kept, never dropped. A reversal (CLP02 = 22) is a new row that
-- points at the payment it reverses; postings are never edited.
CREATE TABLE claim_payments (
    id                            TEXT PRIMARY KEY,
    tenant_id                     TEXT NOT NULL,
    remittance_id                 TEXT NOT NULL REFERENCES remittances (id),
    position                      INTEGER NOT NULL,  -- order of the CLP in its remittance
    claim_id                      TEXT REFERENCES claims (id),
    patient_control_number        TEXT NOT NULL,
    status_code                   TEXT NOT NULL,     -- CLP02
    charge_cents                  BIGINT NOT NULL,
    paid_cents                    BIGINT NOT NULL,
    patient_responsibility_cents  BIGINT NOT NULL,
    payer_claim_control_number    TEXT NOT NULL,     -- CLP07
    reverses_payment_id           TEXT REFERENCES claim_payments (id),
    unmatched_reason              TEXT,
    payment_date                  TEXT,
    posted_at                     BIGINT NOT NULL
);
CREATE INDEX claim_payments_claim ON claim_payments (tenant_id, claim_id);
CREATE INDEX claim_payments_unmatched ON claim_payments (tenant_id, id) WHERE claim_id IS NULL;

-- Service lines (SVC) of a payment.
CREATE TABLE payment_lines (
    payment_id               TEXT NOT NULL REFERENCES claim_payments (id),
    tenant_id                TEXT NOT NULL,
    position                 INTEGER NOT NULL,
    line_number              INTEGER NOT NULL,   -- the claim's line it paid, 0 when unknown
    procedure_code           TEXT NOT NULL,
    modifiers                TEXT NOT NULL,
    original_procedure_code  TEXT NOT NULL,      -- SVC06 when the payer changed the code
    charge_cents             BIGINT NOT NULL,
    paid_cents               BIGINT NOT NULL,
    remark_codes             TEXT NOT NULL,      -- LQ*HE, comma separated
    PRIMARY KEY (payment_id, position)
);

-- CAS adjustments, claim level (line_position 0) and line level.
CREATE TABLE payment_adjustments (
    payment_id     TEXT NOT NULL REFERENCES claim_payments (id),
    tenant_id      TEXT NOT NULL,
    position       INTEGER NOT NULL,
    line_position  INTEGER NOT NULL,
    group_code     TEXT NOT NULL,
    reason_code    TEXT NOT NULL,
    amount_cents   BIGINT NOT NULL,
    quantity       TEXT NOT NULL,
    PRIMARY KEY (payment_id, position)
);

-- PLB provider-level adjustments (positive = withheld from the provider).
CREATE TABLE provider_adjustments (
    remittance_id  TEXT NOT NULL REFERENCES remittances (id),
    tenant_id      TEXT NOT NULL,
    position       INTEGER NOT NULL,
    provider_id    TEXT NOT NULL,
    reason_code    TEXT NOT NULL,
    reference      TEXT NOT NULL,
    amount_cents   BIGINT NOT NULL,
    PRIMARY KEY (remittance_id, position)
);

-- Denials read from adjustments (CAS group + CARC + RARCs), classified by root cause.
CREATE TABLE denials (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    claim_id        TEXT NOT NULL REFERENCES claims (id),
    payment_id      TEXT NOT NULL REFERENCES claim_payments (id),
    remittance_id   TEXT NOT NULL,
    clinic_id       TEXT NOT NULL,
    payer_id        TEXT NOT NULL,
    procedure_code  TEXT NOT NULL,   -- '' for a claim-level adjustment
    group_code      TEXT NOT NULL,
    reason_code     TEXT NOT NULL,
    remark_codes    TEXT NOT NULL,   -- comma separated
    category        TEXT NOT NULL,
    appealable      INTEGER NOT NULL,
    resolution      TEXT NOT NULL,
    owner           TEXT NOT NULL,
    evidence        TEXT NOT NULL,   -- '|' separated
    amount_cents    BIGINT NOT NULL,
    denial_date     TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX denials_tenant_date ON denials (tenant_id, denial_date, id);
CREATE INDEX denials_claim ON denials (tenant_id, claim_id);
