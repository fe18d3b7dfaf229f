-- What happens after payment (issue 10).
-- A reversal (CLP02 = 22) cancels the denials recorded with the payment it reverses: they name
-- the reversal's claim_payments row and are no longer open (ListDenials, SummarizeDenials).
ALTER TABLE denials ADD COLUMN reversed_by_payment_id TEXT REFERENCES claim_payments (id);
-- Why a recorded claim payment moved nothing: CLP02 = 25 (predetermination pricing only), or a
-- denial held while the claim's payment stands. NULL for an ordinary posting.
ALTER TABLE claim_payments ADD COLUMN note TEXT;
