-- Citizens who log in through the town's identity provider (SPID/CIE over OpenID Connect).
--
-- A login under way: the random `state` sent to the provider (only its SHA-256 kept), the ID
-- token's expected nonce and the PKCE verifier; taken once, within ten minutes.
CREATE TABLE citizen_login (
    state_hash TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    verifier TEXT NOT NULL,
    after_path TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A logged-in citizen: the cookie holds a random value, only its SHA-256 is kept, with what
-- the provider vouched for; gone at logout or expiry.
CREATE TABLE citizen_session (
    id_hash TEXT PRIMARY KEY,
    fiscal_code TEXT NOT NULL,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    email TEXT NOT NULL,
    email_verified BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX citizen_session_expiry ON citizen_session (expires_at);

