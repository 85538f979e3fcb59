-- tutela store, PostgreSQL, version 2: what several gateways on one database share (issue 15).
-- The same schema on both backends; a gateway on SQLite (the only one) reads none of it back
-- and writes the stamp as NULL.
-- `stamp`: written with the clocks by every turn of a gateway on PostgreSQL (and set anew by
-- every change that must reach other instances' caches: a hand-back, an admin change); an
-- instance whose cached entry has another stamp reloads it. `session_id`: the session the
-- clocks belong to, so an instance that loads them continues it.
ALTER TABLE session_state ADD COLUMN stamp TEXT;
ALTER TABLE session_state ADD COLUMN session_id TEXT;
-- What the person's next turn must do, through whichever instance it arrives: tell them the AI
-- is back (`handback_case`), pass a suspension's clearance to the engine (`clearance`: JSON of
-- `tutela_types::Clearance`). Taken by one turn only (UPDATE ... RETURNING). Deleted with the user.
CREATE TABLE user_pending (
    user_id       TEXT PRIMARY KEY,
    handback_case BIGINT,
    clearance     TEXT,
    updated_at    BIGINT NOT NULL
);
