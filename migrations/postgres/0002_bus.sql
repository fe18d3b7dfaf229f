-- Event bus: transactional outbox, consumer inbox, and the embedded bus's cursors, delivery
-- attempts and dead letters (see crates/platform/src/bus/mod.rs for the contract).
--
-- Conventions (crates/platform/src/db.rs): ids TEXT, instants BIGINT microseconds since the
-- Unix epoch (UTC), raw bytes BYTEA. The same tables exist on SQLite (migrations/sqlite) so
-- one code path serves both backends.

-- The outbox. A producer inserts a row in the same transaction as the state change that caused
-- the event (`bus::publish`).
-- * Distributed mode: the relay reads rows with published_at IS NULL in seq order, XADDs them
--   to `{prefix}stream:{producer}`, sets published_at, and deletes published rows once they
--   are older than bus.retention_secs (so a copy outlives a Redis loss for that long).
-- * Embedded mode: the table is the log itself; consumers keep a cursor (bus_cursor) on seq,
--   and rows every group has passed are deleted once older than bus.retention_secs.
-- Producers serialise writes per aggregate (they update the aggregate row in the same
-- transaction), so per aggregate, seq order is version order.
CREATE TABLE bus_outbox (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     TEXT   NOT NULL UNIQUE,  -- UUIDv7, the envelope's event_id
    producer     TEXT   NOT NULL,         -- producing service = stream name
    tenant_id    TEXT   NOT NULL,
    aggregate_id TEXT   NOT NULL,
    event_type   TEXT   NOT NULL,         -- full protobuf name of the payload
    envelope     BYTEA  NOT NULL,         -- the encoded arflow.events.v1.Envelope
    created_at   BIGINT NOT NULL,         -- micros; when the row was written
    published_at BIGINT NULL              -- micros; when the relay XADDed it (NULL = not yet)
);
-- The relay's scan: unpublished rows in seq order (small, since rows leave it quickly).
CREATE INDEX bus_outbox_unpublished ON bus_outbox (seq) WHERE published_at IS NULL;
-- The embedded consumers' scan: one producer's log after a cursor.
CREATE INDEX bus_outbox_producer_seq ON bus_outbox (producer, seq);
-- Retention: published (distributed) or old (embedded) rows.
CREATE INDEX bus_outbox_published_at ON bus_outbox (published_at);
CREATE INDEX bus_outbox_created_at ON bus_outbox (created_at);

-- The inbox: the event ids a consumer group has applied. Written in the same transaction as the
-- handler's effects, so a redelivered event is recognised and skipped. Rows older than
-- bus.retention_secs plus one day are deleted (by then the event cannot be redelivered).
CREATE TABLE bus_inbox (
    consumer_group TEXT   NOT NULL,       -- consuming service, e.g. 'scheduler'
    event_id       TEXT   NOT NULL,
    processed_at   BIGINT NOT NULL,       -- micros
    PRIMARY KEY (consumer_group, event_id)
);
CREATE INDEX bus_inbox_processed_at ON bus_inbox (consumer_group, processed_at);

-- Embedded mode: per (group, stream) the seq of the last outbox row the group has processed
-- (applied, skipped as a duplicate, or dead-lettered). Advanced in the handler's transaction.
-- A group starts at 0, i.e. at the beginning of the retained log.
CREATE TABLE bus_cursor (
    consumer_group TEXT   NOT NULL,
    stream         TEXT   NOT NULL,       -- producer name
    last_seq       BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,       -- micros
    PRIMARY KEY (consumer_group, stream)
);

-- Embedded mode: failed delivery attempts of the event at a group's cursor, written outside the
-- failed transaction; deleted when the event is applied or dead-lettered.
CREATE TABLE bus_delivery (
    consumer_group  TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,     -- micros; retry not before
    last_error      TEXT    NULL,         -- the handler's error message (never logged)
    PRIMARY KEY (consumer_group, event_id)
);

-- Dead letters of both modes: events a group gave up on after bus.max_deliveries deliveries.
-- (Distributed mode also copies them to the `{prefix}dead:{group}` stream as a signal.)
CREATE TABLE bus_dead_letter (
    consumer_group TEXT    NOT NULL,
    event_id       TEXT    NOT NULL,      -- envelope event_id (the stream entry id if undecodable)
    stream         TEXT    NOT NULL,      -- producer name
    source_id      TEXT    NOT NULL,      -- outbox seq (embedded) or stream entry id (Redis)
    event_type     TEXT    NOT NULL,
    deliveries     BIGINT  NOT NULL,
    last_error     TEXT    NULL,
    envelope       BYTEA   NOT NULL,
    dead_at        BIGINT  NOT NULL,      -- micros
    PRIMARY KEY (consumer_group, event_id)
);
CREATE INDEX bus_dead_letter_dead_at ON bus_dead_letter (consumer_group, dead_at);
