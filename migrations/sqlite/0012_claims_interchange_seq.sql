-- The last 837P interchange control number (ISA13, repeated in IEA02, GS06/GE02 and ST02/SE02)
-- sent per tenant. Clearinghouses reject an interchange whose ISA13 they have seen from the
-- same sender, so every export takes the next number of this sequence in one statement
-- (docs/reference/x12.md). It wraps from 999999999 to 1: ISA13 has nine digits.
CREATE TABLE claims_interchange_seq (
    tenant_id           TEXT   NOT NULL PRIMARY KEY,
    last_control_number BIGINT NOT NULL
);
