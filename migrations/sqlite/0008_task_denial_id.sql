-- The denial a denial task is for (claims.v1 Denial.id; '' for other kinds and for tasks made
-- before this column). A refreshed open task takes the newer denial's id. The denial reconciler
-- compares it with the claim's latest denial: a claim denied again after its denial task was
-- completed, whose ClaimDenied event was lost, gets a new task.
ALTER TABLE asg_tasks ADD COLUMN denial_id TEXT NOT NULL DEFAULT '';
