-- The version of the privacy notice the person consented to when booking (a digest of the
-- notice's text, see web::notices), beside the time of that consent (consent_at). NULL: booked
-- before versions were kept.
ALTER TABLE appointment ADD COLUMN consent_version TEXT;
