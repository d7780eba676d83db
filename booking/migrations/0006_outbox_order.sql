-- The order of an appointment's emails: 1, 2, 3... as they were queued. Ids are random and
-- several emails may be queued in the same second (an approval and a cancellation racing), so
-- neither tells the order; the worker sends an appointment's emails one after the other, in
-- this order.
ALTER TABLE outbox ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_appointment_position ON outbox (appointment_id, position);
