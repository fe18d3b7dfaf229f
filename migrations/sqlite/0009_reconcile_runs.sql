-- One denial reconcile pass per (tenant, day) across assignment replicas. A replica takes the
-- day's row before its pass (a lease, in real time) and marks it finished after; another
-- replica skips while the lease is live and takes over a lease its holder left to expire.
-- Rows older than 30 days are deleted as passes finish.
CREATE TABLE asg_reconcile_runs (
    tenant_id   TEXT   NOT NULL,
    day         TEXT   NOT NULL,   -- YYYY-MM-DD: the (possibly simulated) day of the pass
    replica     TEXT   NOT NULL,   -- the consumer name of the replica holding it
    started_at  BIGINT NOT NULL,   -- micros, real time: when the lease was taken
    finished_at BIGINT NULL,       -- micros, real time
    PRIMARY KEY (tenant_id, day)
);
