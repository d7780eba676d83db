-- The language the person booked in ("it", "en"): the appointment's emails, reminders and the
-- office's messages are written in it.
ALTER TABLE appointment ADD COLUMN language TEXT NOT NULL DEFAULT 'it';
