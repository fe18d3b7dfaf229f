-- Twin of migrations/postgres/0007_outbox_lean.sql, which drops the outbox indexes that only the
-- embedded bus reads. SQLite runs the embedded bus, which needs them all: nothing changes here.
SELECT 1;
