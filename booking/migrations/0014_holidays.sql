-- Per calendar: no slots on Italy's national holidays and the town's patron saint's day,
-- computed for every year (booking::holidays) instead of dated exceptions seeded for a few years.
-- On for every calendar, the existing ones included; an office open on holidays turns it off.
ALTER TABLE calendar ADD COLUMN closed_on_holidays BIGINT NOT NULL DEFAULT 1;
