-- tutela store, SQLite, version 2: complaints and appeals (C7, transparency report), and a
-- covering index for the age structure.

-- The age-structure histogram reads only the index (deleted_at included, so the partial
-- condition is covered too).
DROP INDEX users_age;
CREATE INDEX users_age ON users (age_state, age, deleted_at);

-- Complaints and appeals from users, with the handling deadline the operator publishes.
-- `body` is content (personal data): removed when the user's data is deleted.
CREATE TABLE complaints (
    id              INTEGER PRIMARY KEY,
    user_id         TEXT,
    category        TEXT NOT NULL,  -- e.g. appeal | content | privacy | minors | other
    intervention_id INTEGER,        -- for an appeal: the intervention appealed against
    body            TEXT,
    status          TEXT NOT NULL,  -- open | resolved
    outcome         TEXT,           -- e.g. upheld | overturned | answered
    received_at     INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    resolved_at     INTEGER
) STRICT;
-- Complaints per period, category and outcome; appeals per period.
CREATE INDEX complaints_received ON complaints (received_at, category);
-- The open queue and overdue cases.
CREATE INDEX complaints_open ON complaints (status, due_at);
CREATE INDEX complaints_user ON complaints (user_id);
