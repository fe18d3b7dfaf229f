-- One outbox row can carry many events (`bus::publish_many` on Postgres): the events of one call
-- that follow each other with the same producer, tenant and type go into one row, up to 256.
-- The relay sends each of them to the stream as its own entry, in order. Each outbox row costs a
-- heap tuple and its index entries at the producer's INSERT, again at the relay's UPDATE, and
-- once more at retention's DELETE: per event, that was most of what the bus cost Postgres.
--
-- * events = 1: `envelope` is one encoded arflow.events.v1.Envelope (every row written before
--   this migration, and every row on SQLite, whose embedded consumers address events by row).
-- * events > 1: `envelope` is an encoded arflow.events.v1.EnvelopeBatch of that many envelopes;
--   event_id and aggregate_id are the first event's (operators: decode the batch for the rest).
ALTER TABLE bus_outbox ADD COLUMN events INTEGER NOT NULL DEFAULT 1 CHECK (events >= 1);
-- A batch is a few kilobytes to some tens: stored out of line without compression. pglz would
-- spend more CPU than the disk it saves on rows that live for `bus.retention_secs`.
ALTER TABLE bus_outbox ALTER COLUMN envelope SET STORAGE EXTERNAL;
