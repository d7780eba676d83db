-- When the last wrong password was typed: after a quiet day the count of failures starts again.
ALTER TABLE account ADD COLUMN last_failed_at BIGINT;
