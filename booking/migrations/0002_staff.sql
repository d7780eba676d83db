-- Staff accounts, their sessions, the audit log, and what the office records on an
-- appointment. Same conventions as 0001: BIGINT ids chosen by the application, Unix seconds.

-- role: 'admin' (everything), 'coordinator' (the offices in account_office: their calendars,
-- services and operators), 'operator' (the agenda of the offices in account_office).
CREATE TABLE account (
    id BIGINT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password BIGINT NOT NULL DEFAULT 1,
    disabled BIGINT NOT NULL DEFAULT 0,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    -- The operator row (booking side) this account acts as, when it hosts appointments.
    operator_id BIGINT REFERENCES operator (id),
    created_at BIGINT NOT NULL
);

CREATE TABLE account_office (
    account_id BIGINT NOT NULL REFERENCES account (id),
    office_id BIGINT NOT NULL REFERENCES office (id),
    PRIMARY KEY (account_id, office_id)
);

-- The cookie holds a random value; only its SHA-256 is stored.
CREATE TABLE staff_session (
    id_hash TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES account (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX staff_session_account ON staff_session (account_id);

CREATE TABLE audit (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    -- An account id, or NULL for the citizen or the system (see actor).
    account_id BIGINT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    -- 'appointment', 'office', 'service', 'calendar', 'account'.
    target_kind TEXT NOT NULL,
    target_id BIGINT,
    office_id BIGINT,
    detail TEXT NOT NULL DEFAULT ''
);

CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_office ON audit (office_id, at);

ALTER TABLE appointment ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE appointment ADD COLUMN outcome_at BIGINT;
