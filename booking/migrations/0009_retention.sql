-- Retention (booking::store::retention): when an appointment's personal data was removed, and
-- the local day the daily sweep last ran (one sweep a day, whichever node or restart runs it).
ALTER TABLE appointment ADD COLUMN anonymised_at BIGINT;
INSERT INTO setting (name, value) VALUES ('retention_day', '');
