-- Per service: booking needs the SPID/CIE login, and the booking carries the fiscal code the
-- identity provider vouched for (with no provider set, nobody can book it online).
ALTER TABLE service ADD COLUMN login_required BIGINT NOT NULL DEFAULT 0;
