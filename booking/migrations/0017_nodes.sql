-- Several nodes of one service on one database (issue 16). Each node says it is alive, where the
-- others reach it, and whether it takes new rooms; each video room (by its appointment's public
-- code, the room's name in the socket's URL) is held by one node at a time, for a short lease
-- that the node renews while it lives. A node that dies loses its rooms when the lease runs out.
CREATE TABLE node (
    id TEXT PRIMARY KEY,
    -- Where the other nodes forward this node's rooms' sockets (http://10.0.0.2:8080).
    url TEXT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    -- 1: takes new rooms; 0: draining (stopping).
    accepting BIGINT NOT NULL
);

CREATE TABLE room_lease (
    code TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- Whether the citizen is in the room now: every node's agenda shows it.
    citizen_waiting BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX room_lease_node ON room_lease (node_id);
