-- tutela store, SQLite, version 6: what the operator console shows of a case (issue 14).
-- The message that opened (or raised) a case with its findings, and the turns before it in that
-- conversation. Content: personal data, kept for cases only, deleted with the user's data and
-- after the retention period of resolved cases; never in the audit chain.
CREATE TABLE case_turns (
    id            INTEGER PRIMARY KEY,
    escalation_id INTEGER NOT NULL REFERENCES escalations (id) ON DELETE CASCADE,
    role          TEXT NOT NULL,              -- user | assistant
    body          TEXT NOT NULL,
    at            INTEGER NOT NULL,           -- when the gateway kept it (the triggering turn)
    trigger       INTEGER NOT NULL DEFAULT 0, -- 1: a message that opened or raised the case
    findings      TEXT NOT NULL DEFAULT '[]'  -- trigger: JSON findings, spans into `body`
) STRICT;
CREATE INDEX case_turns_case ON case_turns (escalation_id, id);

-- How a case ended, chosen from the console's categories (`resolution` keeps the note).
ALTER TABLE escalations ADD COLUMN outcome TEXT;
