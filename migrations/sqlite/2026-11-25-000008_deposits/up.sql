-- The deposit workflow's place on its appointment: the payment link sent, and how many
-- steps the workflow has taken (its workflow_instances row's version).
ALTER TABLE appointments ADD COLUMN deposit_link TEXT;
ALTER TABLE appointments ADD COLUMN deposit_steps BIGINT NOT NULL DEFAULT 0;
