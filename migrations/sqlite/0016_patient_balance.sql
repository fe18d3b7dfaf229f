-- Patient responsibility (issue 10): what the payer says the patient owes (CAS group PR, any
-- CARC; CARC 100, payment made to the patient) moves from the claim's payer balance
-- (balance_cents) to its patient balance; a reversal moves it back. Never silently zeroed.
ALTER TABLE claims ADD COLUMN patient_balance_cents BIGINT NOT NULL DEFAULT 0;
