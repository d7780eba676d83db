-- Whether a room's citizen is waiting now travels between nodes as a notification the moment
-- it changes (issue 16), not in the room's lease row every two seconds.
ALTER TABLE room_lease DROP COLUMN citizen_waiting;
