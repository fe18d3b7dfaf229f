-- The inbox keeps only its primary key. Its second index, (consumer_group, processed_at), served
-- the prune alone and cost every consumed event an index entry. The prune now walks the primary
-- key instead: event ids are UUIDv7s (`bus::new_envelope`), whose text sorts by creation time,
-- so the rows of events created before the cutoff are one key range; `processed_at` still
-- decides (`bus::store::prune_inbox`).
DROP INDEX bus_inbox_processed_at;
