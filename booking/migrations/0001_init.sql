-- One schema for SQLite and PostgreSQL: integer columns are BIGINT (an INTEGER affinity in
-- SQLite), instants are Unix seconds in UTC, local days are 'YYYY-MM-DD' text, flags are 0/1.
-- Ids are chosen by the application, so no auto-increment syntax is needed.

CREATE TABLE office (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    department TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    hours_text TEXT NOT NULL DEFAULT '',
    position BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE operator (
    id BIGINT PRIMARY KEY,
    office_id BIGINT NOT NULL REFERENCES office (id),
    name TEXT NOT NULL,
    email TEXT NOT NULL
);

CREATE TABLE calendar (
    id BIGINT PRIMARY KEY,
    office_id BIGINT NOT NULL REFERENCES office (id),
    name TEXT NOT NULL,
    timezone TEXT NOT NULL DEFAULT 'Europe/Rome',
    horizon_days BIGINT NOT NULL DEFAULT 60,
    min_notice_days BIGINT NOT NULL DEFAULT 1,
    moderated BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE calendar_operator (
    calendar_id BIGINT NOT NULL REFERENCES calendar (id),
    operator_id BIGINT NOT NULL REFERENCES operator (id),
    position BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (calendar_id, operator_id)
);

CREATE TABLE opening_rule (
    id BIGINT PRIMARY KEY,
    calendar_id BIGINT NOT NULL REFERENCES calendar (id),
    weekdays BIGINT NOT NULL,
    start_minute BIGINT NOT NULL,
    end_minute BIGINT NOT NULL,
    slot_minutes BIGINT NOT NULL,
    buffer_minutes BIGINT NOT NULL DEFAULT 0,
    capacity BIGINT NOT NULL DEFAULT 1,
    modes BIGINT NOT NULL DEFAULT 7,
    valid_from TEXT,
    valid_to TEXT
);

-- A closed day (closed = 1), or special hours that replace the weekly rules that day.
CREATE TABLE calendar_exception (
    id BIGINT PRIMARY KEY,
    calendar_id BIGINT NOT NULL REFERENCES calendar (id),
    day TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    closed BIGINT NOT NULL,
    start_minute BIGINT,
    end_minute BIGINT,
    slot_minutes BIGINT,
    buffer_minutes BIGINT,
    capacity BIGINT,
    modes BIGINT
);

CREATE TABLE service (
    id BIGINT PRIMARY KEY,
    office_id BIGINT NOT NULL REFERENCES office (id),
    calendar_id BIGINT NOT NULL REFERENCES calendar (id),
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    max_minutes BIGINT NOT NULL,
    instructions TEXT NOT NULL DEFAULT '',
    documents TEXT NOT NULL DEFAULT '',
    modes BIGINT NOT NULL DEFAULT 7,
    published BIGINT NOT NULL DEFAULT 1,
    position BIGINT NOT NULL DEFAULT 0
);

-- An active appointment holds one seat of its slot: seat is 0..capacity-1 and the unique index
-- refuses a second holder, whatever the concurrency. Ending an appointment sets seat (and
-- active_service) to NULL, which frees the slot: NULLs never collide in a unique index.
CREATE TABLE appointment (
    id BIGINT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    office_id BIGINT NOT NULL REFERENCES office (id),
    service_id BIGINT NOT NULL REFERENCES service (id),
    calendar_id BIGINT NOT NULL REFERENCES calendar (id),
    operator_id BIGINT REFERENCES operator (id),
    start_at BIGINT NOT NULL,
    end_at BIGINT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    seat BIGINT,
    active_service BIGINT,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    email TEXT NOT NULL,
    email_norm TEXT NOT NULL,
    phone TEXT NOT NULL DEFAULT '',
    fiscal_code TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL,
    consent_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    verify_deadline BIGINT NOT NULL,
    verified_at BIGINT,
    cancelled_at BIGINT,
    cancelled_by TEXT,
    sequence BIGINT NOT NULL DEFAULT 0,
    reminder_day_sent BIGINT NOT NULL DEFAULT 0,
    reminder_hour_sent BIGINT NOT NULL DEFAULT 0,
    booked_by TEXT NOT NULL DEFAULT 'citizen'
);

CREATE UNIQUE INDEX appointment_seat ON appointment (calendar_id, start_at, seat);
-- One active appointment per person and service.
CREATE UNIQUE INDEX appointment_one_per_service ON appointment (email_norm, active_service);
CREATE INDEX appointment_calendar_start ON appointment (calendar_id, start_at);
CREATE INDEX appointment_email_status ON appointment (email_norm, status);
CREATE INDEX appointment_status_start ON appointment (status, start_at);

-- Every email is written here in the transaction that causes it, then delivered by a worker.
CREATE TABLE outbox (
    id BIGINT PRIMARY KEY,
    appointment_id BIGINT,
    kind TEXT NOT NULL,
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    ics TEXT,
    ics_method TEXT,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT
);

CREATE INDEX outbox_due ON outbox (sent_at, next_attempt_at);

CREATE TABLE setting (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
