-- A person waiting for a place at a service whose times are all taken: when a seat frees, the
-- first person waiting whose modes and weekdays fit gets a pending booking that holds it a short
-- time (appointment_id), offered by email; unconfirmed, it goes to the next.
CREATE TABLE waitlist_entry (
    id BIGINT PRIMARY KEY,
    service_id BIGINT NOT NULL REFERENCES service (id),
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    email TEXT NOT NULL,
    -- The person, as bookings count them (lower case, +tag dropped).
    person_key TEXT NOT NULL,
    fiscal_code TEXT NOT NULL DEFAULT '',
    modes BIGINT NOT NULL,
    weekdays BIGINT NOT NULL,
    -- Only this day (YYYY-MM-DD), when the person asked for one; the place ends after it.
    only_day TEXT,
    language TEXT NOT NULL,
    consent_version TEXT,
    -- unverified, waiting, offered, booked, missed, left, expired.
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    verified_at BIGINT,
    -- The order of confirmation (seats go to the lowest first): 1, 2, ... over all services.
    position BIGINT,
    expires_at BIGINT NOT NULL,
    appointment_id BIGINT
);
CREATE INDEX waitlist_service ON waitlist_entry (service_id, status, position);
-- One place per person and service at a time.
CREATE UNIQUE INDEX waitlist_one ON waitlist_entry (service_id, person_key)
    WHERE status IN ('unverified', 'waiting', 'offered');
