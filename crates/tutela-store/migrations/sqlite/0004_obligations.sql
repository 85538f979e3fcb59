-- Obligation records (CN Anthropomorphic Measures Art. 22): a usage threshold reached its
-- warning level or was crossed, or the operator declared a trigger (feature launch, major
-- technical change). Each opens an assessment record with its due items.
-- `key` makes threshold records idempotent: one warning and one crossing per threshold.
CREATE TABLE obligations (
    id           INTEGER PRIMARY KEY,
    key          TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,            -- threshold_warning | threshold_crossed | declared
    trigger      TEXT NOT NULL,            -- registered_users | monthly_active_users | feature_launch | major_change | other
    profile      TEXT,
    obligation   TEXT,
    article      TEXT,
    value        INTEGER,
    threshold    INTEGER,
    description  TEXT NOT NULL,
    due_items    TEXT NOT NULL DEFAULT '[]', -- JSON list of strings
    status       TEXT NOT NULL,            -- open | closed
    opened_at    INTEGER NOT NULL,
    closed_at    INTEGER,
    note         TEXT
);
CREATE INDEX obligations_status ON obligations (status, opened_at);
