-- Scheduler (issue 10, "Aging and deadlines"). The SQLite twin is identical.
--
-- scheduler_claims.first_submission_date: the original bill date. Aging counts from it (or
-- from the date of service, per tenant); a resubmission moves `submission_date` (which the
-- status-check cadence restarts from) but never this one, which only ever moves earlier (a
-- late original submission delivered after its resubmission).
-- scheduler_claims.filed_on: the day the payer was seen to have the claim (277CA A2 accepted,
-- or adjudicated): proof of timely filing; the timely-filing warnings stop. A rejection clears
-- it (a rejected claim was never filed).
ALTER TABLE scheduler_claims ADD COLUMN first_submission_date TEXT NULL;
ALTER TABLE scheduler_claims ADD COLUMN filed_on TEXT NULL;
UPDATE scheduler_claims SET first_submission_date = submission_date;

-- Timely-filing warning stages of a payer's cadence row: a JSON array of days before the
-- deadline, e.g. [30,14,7]. NULL: the row's single `timely_filing_warning_days`.
ALTER TABLE scheduler_payer_cadence ADD COLUMN timely_filing_warning_stages TEXT NULL;

-- Why a timer was cancelled: 'closed' (paid, closed, written off: a reopened claim gets these
-- back), 'replaced' (a status check a resubmission re-planned), 'filed' (a timely-filing
-- warning the payer's acceptance made moot; a rejection brings back the future ones). NULL:
-- cancelled before this migration or by CancelTimer.
ALTER TABLE scheduler_timers ADD COLUMN cancel_reason TEXT NULL;
