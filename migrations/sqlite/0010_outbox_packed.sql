-- Twin of migrations/postgres/0010_outbox_packed.sql. On SQLite every outbox row stays one event
-- (events = 1): the embedded consumers' cursor addresses an event by its row.
ALTER TABLE bus_outbox ADD COLUMN events INTEGER NOT NULL DEFAULT 1 CHECK (events >= 1);
