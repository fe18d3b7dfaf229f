-- The outbox on Postgres carries only the indexes distributed mode reads (Postgres always runs
-- distributed; the embedded bus runs on SQLite, whose twin keeps its indexes). Every index costs
-- each published event twice: once at the producer's INSERT and once at the relay's UPDATE of
-- published_at (which can never be HOT: the relay's partial index reads that column).
--
-- * bus_outbox_producer_seq, bus_outbox_created_at: the embedded consumers' log scan and
--   retention. Unused here.
-- * bus_outbox_published_at: retention now walks the head of the log in seq order instead
--   (`redis_streams::housekeeping`): the oldest rows are the first published.
-- * the UNIQUE on event_id: event ids are UUIDv7s minted by `bus::new_envelope`; consumers
--   de-duplicate by event id in their inbox, which is where uniqueness matters. Looking an event
--   up by id (tests, operators) scans, which the outbox's short retention keeps cheap.
-- What is left: the primary key (seq) and bus_outbox_unpublished (the relay's scan).
DROP INDEX bus_outbox_producer_seq;
DROP INDEX bus_outbox_created_at;
DROP INDEX bus_outbox_published_at;
ALTER TABLE bus_outbox DROP CONSTRAINT bus_outbox_event_id_key;
