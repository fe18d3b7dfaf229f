-- A provider-level adjustment (PLB) that names one of our claims in PLB03-2 (a recoupment
-- `WO:<ICN>`, a forwarding balance, interest on a claim...) is tied to that claim
-- (docs/reference/x12.md §3.3); others stay provider-level with their reason. NULL: not tied.
ALTER TABLE provider_adjustments ADD COLUMN claim_id TEXT REFERENCES claims (id);
