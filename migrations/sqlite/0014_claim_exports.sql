-- Which claim each exported 837P interchange carried, so that a 999 acknowledgment (AK1 names
-- our GS06, AK2 our ST02: both the interchange's control number, docs/reference/x12.md §2.3)
-- reaches the claims of a rejected transaction set. One row per (tenant, control number); the
-- number sequence wraps after 999999999, and a reused number names its newest export.
CREATE TABLE claim_exports (
    tenant_id      TEXT   NOT NULL,
    control_number BIGINT NOT NULL,
    claim_id       TEXT   NOT NULL REFERENCES claims (id),
    exported_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, control_number)
);
