-- One active appointment per person and service, where a service may name the person by the
-- fiscal code instead of the email address (a parent books for each child with one email).
-- `holder` is who the rule counts: the normalised email, or "cf:" and the fiscal code in the one
-- form all its omocode variants share (booking::fiscal::person).
ALTER TABLE service ADD COLUMN fiscal_code_required BIGINT NOT NULL DEFAULT 0;
ALTER TABLE appointment ADD COLUMN holder TEXT;
UPDATE appointment SET holder = email_norm;
DROP INDEX appointment_one_per_service;
CREATE UNIQUE INDEX appointment_one_per_person ON appointment (holder, active_service);
