-- A person's request for their data through a link sent to their email address: the link names
-- the row, valid a day; `person_key` counts a person's requests against the daily limit.
CREATE TABLE data_request (
    id BIGINT PRIMARY KEY,
    email_norm TEXT NOT NULL,
    person_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX data_request_person ON data_request (person_key, created_at);
