-- The person behind an email address, for the limits on unverified bookings: lower case, with a
-- "+tag" of the local part removed (a+1@x.it and a+2@x.it are one person).
ALTER TABLE appointment ADD COLUMN person_key TEXT;
CREATE INDEX appointment_person_key ON appointment (person_key, created_at);
