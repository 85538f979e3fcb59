-- tutela store, SQLite, version 5: staff accounts and their console sessions (operator console,
-- issue 14). Passwords are kept only as argon2id PHC strings; a session is kept only as the
-- SHA-256 of its cookie value, so a copy of the database does not let anyone sign in.
CREATE TABLE staff (
    id                  INTEGER PRIMARY KEY,
    username            TEXT NOT NULL UNIQUE,
    display_name        TEXT NOT NULL,
    role                TEXT NOT NULL,   -- agent | supervisor | compliance | admin
    password_hash       TEXT NOT NULL,   -- argon2id, PHC string
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL,
    disabled_at         INTEGER,
    failed_logins       INTEGER NOT NULL DEFAULT 0,
    locked_until        INTEGER
) STRICT;

CREATE TABLE staff_sessions (
    token_hash   TEXT PRIMARY KEY,      -- hex SHA-256 of the cookie value
    staff_id     INTEGER NOT NULL REFERENCES staff (id),
    csrf         TEXT NOT NULL,         -- the form token of this session
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    ended_at     INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id, ended_at);
