-- Scheduler: durable timers, the per-tenant policies that set them, the scheduler's own
-- projection of claims (it never reads the claims tables), and cron runs.
--
-- Conventions (crates/platform/src/db.rs): ids TEXT (UUIDv7), instants BIGINT microseconds
-- UTC, dates TEXT 'YYYY-MM-DD', money BIGINT cents, JSON as TEXT. The SQLite twin has the same
-- tables and indexes.

-- Durable timers. Firing claims due rows with FOR UPDATE SKIP LOCKED, marks them fired and
-- writes TimerFired to the outbox in the same transaction: each timer fires once across
-- replicas, and one due while every replica was down is simply due when one starts.
CREATE TABLE scheduler_timers (
    id           TEXT   PRIMARY KEY,       -- UUIDv7
    tenant_id    TEXT   NOT NULL,
    subject      TEXT   NOT NULL,          -- what it is about: a claim id
    kind         TEXT   NOT NULL,          -- aging_30, status_check, timely_filing_warning, ...
    due_at       BIGINT NOT NULL,          -- micros
    clinic_id    TEXT   NOT NULL DEFAULT '', -- for clinic-scoped keys in ListTimers
    payload      TEXT   NOT NULL,          -- JSON of typed fields (payer, threshold, deadline...), no PHI
    state        TEXT   NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'fired', 'cancelled')),
    created_at   BIGINT NOT NULL,
    fired_at     BIGINT NULL,
    cancelled_at BIGINT NULL,
    -- A redelivered or repeated event never makes a second timer. Also the index of
    -- "a claim's timers" (cancelling what is left, ListTimers by subject): no second index on
    -- (tenant_id, subject), since every index is one more write per timer fired.
    UNIQUE (tenant_id, subject, kind, due_at)
);
-- The firing scan and the idle tick's MIN(due_at): only pending timers are in it, so their
-- cost follows what is due, not how many timers wait or have fired.
CREATE INDEX scheduler_timers_pending_due ON scheduler_timers (due_at) WHERE state = 'pending';
-- ListTimers by due range, keyset pages on (due_at, id).
CREATE INDEX scheduler_timers_tenant_due ON scheduler_timers (tenant_id, due_at, id);

-- Per-tenant policy; a tenant without a row uses the configured defaults.
CREATE TABLE scheduler_tenant_policies (
    tenant_id       TEXT   PRIMARY KEY,
    aging_basis     TEXT   NOT NULL CHECK (aging_basis IN ('submission', 'date_of_service')),
    aging_thresholds TEXT  NOT NULL,        -- JSON array of days, e.g. [30,60,90,120]
    time_zone       TEXT   NOT NULL,        -- IANA name: timers at local midnight, cron in local time
    updated_at      BIGINT NOT NULL
);

-- Payer follow-up cadence and warning lead times. payer_id '*' is the tenant's default; a
-- payer without a row (and a tenant without '*') uses the configured defaults.
CREATE TABLE scheduler_payer_cadence (
    tenant_id                  TEXT    NOT NULL,
    payer_id                   TEXT    NOT NULL,
    first_check_business_days  BIGINT NOT NULL,
    repeat_business_days       BIGINT NOT NULL,  -- 0 = one check only
    max_checks                 BIGINT NOT NULL,
    timely_filing_warning_days BIGINT NOT NULL,
    appeal_warning_days        BIGINT NOT NULL,
    updated_at                 BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, payer_id)
);

-- A tenant's business-day overrides over weekends and US federal holidays.
CREATE TABLE scheduler_calendar_days (
    tenant_id    TEXT    NOT NULL,
    day          TEXT    NOT NULL,          -- YYYY-MM-DD
    business_day BIGINT NOT NULL,          -- 1: open (e.g. works on Columbus Day); 0: closed
    note         TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, day)
);

-- The scheduler's projection of claims, from the claims stream: what the aging snapshot
-- counts, and the last aggregate version applied (a late ClaimSubmitted after a paid event is
-- ignored). Nullable dates: a status event can arrive before the submission it follows.
CREATE TABLE scheduler_claims (
    tenant_id          TEXT   NOT NULL,
    claim_id           TEXT   NOT NULL,
    clinic_id          TEXT   NOT NULL,
    payer_id           TEXT   NOT NULL,
    status             TEXT   NOT NULL,    -- claims.v1 enum name
    submission_date    TEXT   NULL,
    first_service_date TEXT   NULL,
    balance_cents      BIGINT NOT NULL,
    last_version       BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, claim_id)
);
CREATE INDEX scheduler_claims_status ON scheduler_claims (tenant_id, status);

-- Denials seen on the claims stream, for the weekly digest.
CREATE TABLE scheduler_denials (
    tenant_id    TEXT   NOT NULL,
    denial_id    TEXT   NOT NULL,
    claim_id     TEXT   NOT NULL,
    payer_id     TEXT   NOT NULL,
    clinic_id    TEXT   NOT NULL,
    category     TEXT   NOT NULL,
    reason_code  TEXT   NOT NULL,
    amount_cents BIGINT NOT NULL,
    denial_date  TEXT   NULL,
    occurred_at  BIGINT NOT NULL,          -- micros, the event's occur_time
    PRIMARY KEY (tenant_id, denial_id)
);
CREATE INDEX scheduler_denials_occurred ON scheduler_denials (tenant_id, occurred_at);

-- One row per (job, tenant, scheduled instant), inserted in the transaction that runs the job:
-- a replica that loses the insert skips, and a run that fails rolls its row back, so every
-- instant runs exactly once.
CREATE TABLE scheduler_cron_runs (
    id           TEXT   NOT NULL UNIQUE,   -- UUIDv7
    job          TEXT   NOT NULL,          -- aging_snapshot, denial_digest
    tenant_id    TEXT   NOT NULL,
    scheduled_at BIGINT NOT NULL,          -- micros, the cron instant
    state        TEXT   NOT NULL,          -- succeeded
    started_at   BIGINT NOT NULL,          -- micros (scheduler clock)
    finished_at  BIGINT NULL,
    summary      TEXT   NOT NULL DEFAULT '{}', -- JSON counts and cents, no PHI
    replica      TEXT   NOT NULL,
    PRIMARY KEY (job, tenant_id, scheduled_at)
);
CREATE INDEX scheduler_cron_runs_tenant ON scheduler_cron_runs (tenant_id, scheduled_at);
