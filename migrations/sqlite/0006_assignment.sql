-- Assignment service tables: specialists, follow-up tasks, the follow-up log, a per-claim
-- projection of claim events, and the change log WatchQueues streams from.
-- Conventions (crates/platform/src/db.rs): ids TEXT UUIDv7, instants BIGINT microseconds UTC,
-- dates TEXT 'YYYY-MM-DD', money BIGINT cents, booleans BIGINT 0/1 (what sqlx Any maps on
-- both backends). Every row carries tenant_id; only the assignment service reads these.

CREATE TABLE asg_specialists (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    -- The API key id the specialist calls with: how ListMyTasks knows who "my" is.
    key_id          TEXT,
    capacity        BIGINT NOT NULL CHECK (capacity >= 1),
    -- Maintained with every assignment and release; a conditional UPDATE
    -- (WHERE open_tasks < capacity) is what keeps replicas from overfilling a queue.
    open_tasks      BIGINT NOT NULL DEFAULT 0 CHECK (open_tasks >= 0),
    -- JSON document {days, start_time, end_time, time_zone}.
    working_hours   TEXT NOT NULL,
    active          BIGINT NOT NULL,
    out_of_office   BIGINT NOT NULL,
    deleted         BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX asg_specialists_key ON asg_specialists (tenant_id, key_id)
    WHERE key_id IS NOT NULL AND deleted = 0;
CREATE INDEX asg_specialists_tenant ON asg_specialists (tenant_id, id);

-- Coverage as rows (not JSON) so candidate selection is one indexed query; '*' = all.
CREATE TABLE asg_specialist_payers (
    tenant_id       TEXT NOT NULL,
    specialist_id   TEXT NOT NULL REFERENCES asg_specialists (id),
    payer_id        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, specialist_id, payer_id)
);
CREATE INDEX asg_specialist_payers_payer ON asg_specialist_payers (tenant_id, payer_id);

CREATE TABLE asg_specialist_clinics (
    tenant_id       TEXT NOT NULL,
    specialist_id   TEXT NOT NULL REFERENCES asg_specialists (id),
    clinic_id       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, specialist_id, clinic_id)
);

-- What the claim events said about each claim (we never read the claims tables).
CREATE TABLE asg_claims (
    tenant_id           TEXT NOT NULL,
    claim_id            TEXT NOT NULL,
    clinic_id           TEXT NOT NULL,
    payer_id            TEXT NOT NULL,
    status              TEXT NOT NULL,
    balance_cents       BIGINT NOT NULL,
    submission_date     TEXT,
    first_service_date  TEXT,
    -- Highest claim aggregate_version applied: older events do not overwrite newer state.
    version             BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, claim_id)
);

CREATE TABLE asg_tasks (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL,
    claim_id            TEXT NOT NULL,
    clinic_id           TEXT NOT NULL,
    payer_id            TEXT NOT NULL,
    kind                TEXT NOT NULL,
    -- unassigned | assigned | in_progress | completed
    status              TEXT NOT NULL,
    detail              TEXT NOT NULL,
    specialist_id       TEXT,
    priority            BIGINT NOT NULL,
    -- JSON list of {factor, points, why}: why the task sits where it does.
    priority_reasons    TEXT NOT NULL,
    balance_cents       BIGINT NOT NULL,
    denial_category     TEXT NOT NULL DEFAULT '',
    denial_resolution   TEXT NOT NULL DEFAULT '',
    denial_owner        TEXT NOT NULL DEFAULT '',
    appealable          BIGINT NOT NULL DEFAULT 0,
    denied_amount_cents BIGINT NOT NULL DEFAULT 0,
    deadline            TEXT,
    notes               TEXT NOT NULL DEFAULT '',
    snooze_until        BIGINT,
    due_at              BIGINT NOT NULL,
    outcome             TEXT,
    automatic_close     BIGINT NOT NULL DEFAULT 0,
    -- 1 once TaskUnassigned said nobody fits; the sweep retries quietly until assigned.
    unassigned_notice   BIGINT NOT NULL DEFAULT 0,
    source_event_id     TEXT,
    version             BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    closed_at           BIGINT
);
-- One OPEN task per (claim, kind): a redelivered or repeated event finds the open task and
-- updates it instead of making a second one.
CREATE UNIQUE INDEX asg_tasks_open_claim_kind ON asg_tasks (tenant_id, claim_id, kind)
    WHERE closed_at IS NULL;
CREATE INDEX asg_tasks_queue ON asg_tasks (tenant_id, specialist_id, priority DESC)
    WHERE closed_at IS NULL;
CREATE INDEX asg_tasks_unassigned ON asg_tasks (status, priority DESC)
    WHERE status = 'unassigned';
CREATE INDEX asg_tasks_claim ON asg_tasks (tenant_id, claim_id, updated_at);

-- A claim locked to the specialist who pulled one of its tasks (ClaimNextTask), so two
-- specialists never work the same claim at once.
CREATE TABLE asg_claim_locks (
    tenant_id       TEXT NOT NULL,
    claim_id        TEXT NOT NULL,
    specialist_id   TEXT NOT NULL,
    locked_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, claim_id)
);

CREATE TABLE asg_follow_ups (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL,
    claim_id            TEXT NOT NULL,
    task_id             TEXT,
    specialist_id       TEXT,
    channel             TEXT NOT NULL,
    payer_reference     TEXT NOT NULL,
    representative      TEXT NOT NULL,
    answer              TEXT NOT NULL,
    paid_date           TEXT,
    check_number        TEXT NOT NULL,
    denial_reason       TEXT NOT NULL,
    notes               TEXT NOT NULL,
    next_follow_up_date TEXT,
    contacted_at        BIGINT NOT NULL
);
CREATE INDEX asg_follow_ups_claim ON asg_follow_ups (tenant_id, claim_id, contacted_at, id);

-- Every task change, in a per-tenant sequence: WatchQueues' resumable cursor. The sequence
-- comes from asg_change_seq, a row per tenant that every transaction changing the tenant's
-- tasks locks first (store::lock_tenant), so per tenant a higher sequence always commits
-- later and a reader never skips a row that commits after it read (a BIGSERIAL would allow
-- that on Postgres).
CREATE TABLE asg_change_seq (
    tenant_id   TEXT PRIMARY KEY,
    last_seq    BIGINT NOT NULL
);
CREATE TABLE asg_task_changes (
    tenant_id       TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    task_id         TEXT NOT NULL,
    change          TEXT NOT NULL,
    specialist_id   TEXT,
    changed_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
