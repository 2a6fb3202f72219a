ALTER TABLE appointments DROP COLUMN deposit_steps;
ALTER TABLE appointments DROP COLUMN deposit_link;
