-- An archived office: no longer shown to citizens nor bookable, and gone from the console's
-- lists, while its appointments, statistics and audit entries stay. NULL: in service.
ALTER TABLE office ADD COLUMN archived_at BIGINT;
