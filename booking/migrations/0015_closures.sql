-- An office's extraordinary closure (a strike, a flood, a move): a day or a range, the whole
-- office or one calendar, with the reason shown on the office's public page for the period. Its
-- closed days are calendar exceptions that carry its id, and go with it.
CREATE TABLE closure (
    id BIGINT PRIMARY KEY,
    office_id BIGINT NOT NULL REFERENCES office (id),
    -- NULL: every calendar of the office.
    calendar_id BIGINT REFERENCES calendar (id),
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX closure_office ON closure (office_id, last_day);
ALTER TABLE calendar_exception ADD COLUMN closure_id BIGINT;
