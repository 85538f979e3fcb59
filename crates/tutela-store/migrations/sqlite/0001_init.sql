-- tutela store, SQLite, version 1: every table the gateway and the reports need.
--
-- Conventions: instants are INTEGER seconds since the Unix epoch (UTC); local days are INTEGER
-- days since 1970-01-01 in the user's time zone (tutela_types::LocalDate); months are INTEGER
-- yyyymm in the deployment's report time zone; enums are lowercase snake_case TEXT; JSON is TEXT.
-- Indexes are chosen for the report queries at 1,000,000 users (see the comment on each).

-- Key/value facts about this database, e.g. the salt for pseudonymous references.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- The salt that turns user and session ids into pseudonymous references (audit log, deleted
-- users). Random per database; never leaves it.
INSERT INTO meta (key, value) VALUES ('subject_salt', lower(hex(randomblob(32))));

-- One row per end user of the operator's service. `id` is the operator's user id; after a
-- deletion (CN Art 16) the row becomes a tombstone whose id is the pseudonym `deleted:<hash>`.
CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    first_seen           INTEGER NOT NULL,
    registered_at        INTEGER,
    age_state            TEXT NOT NULL DEFAULT 'unknown',
    age                  INTEGER,
    elderly              INTEGER NOT NULL DEFAULT 0,
    guardian_consent     INTEGER NOT NULL DEFAULT 0,
    jurisdiction         TEXT,
    utc_offset_minutes   INTEGER NOT NULL DEFAULT 0,
    minors_daily_minutes INTEGER,
    quiet_start          INTEGER,
    quiet_end            INTEGER,
    updated_at           INTEGER NOT NULL,
    deleted_at           INTEGER
) STRICT;
-- Registered users as of a date, per jurisdiction (CN thresholds: 1,000,000 registered).
CREATE INDEX users_registered ON users (registered_at, jurisdiction) WHERE deleted_at IS NULL;
-- New users per period.
CREATE INDEX users_first_seen ON users (first_seen);
-- Age structure (covering: group by age_state, age without touching the table).
CREATE INDEX users_age ON users (age_state, age) WHERE deleted_at IS NULL;

-- Guardian and emergency contacts. Personal data: deleted with the user.
CREATE TABLE contacts (
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE ON UPDATE CASCADE,
    kind     TEXT NOT NULL,  -- guardian | emergency_contact
    channel  TEXT NOT NULL,  -- webhook | email | sms | ...
    address  TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, kind, channel, address)
) STRICT, WITHOUT ROWID;

-- The engine's per-user clocks (tutela_types::SessionState as JSON), rewritten every turn.
CREATE TABLE session_state (
    user_id    TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Conversation sessions with start and end, for the session-duration distribution.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    jurisdiction TEXT,
    started_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    turns        INTEGER NOT NULL DEFAULT 0,
    ended_at     INTEGER,
    end_reason   TEXT
) STRICT;
-- Duration distribution of sessions started in a period.
CREATE INDEX sessions_started ON sessions (started_at);
-- A user's sessions (export, deletion, admin lookup).
CREATE INDEX sessions_user ON sessions (user_id, started_at);

-- Seconds of use per user per local day and jurisdiction (daily usage minutes, minors' budgets).
CREATE TABLE usage_daily (
    user_id      TEXT NOT NULL,
    day          INTEGER NOT NULL,
    jurisdiction TEXT NOT NULL,
    seconds      INTEGER NOT NULL,
    turns        INTEGER NOT NULL,
    PRIMARY KEY (user_id, day, jurisdiction)
) STRICT, WITHOUT ROWID;
-- Daily totals and daily active users per jurisdiction.
CREATE INDEX usage_daily_day ON usage_daily (day, jurisdiction);

-- One row per user active in a month (yyyymm in the report time zone) and jurisdiction:
-- "monthly active users in month M" is a range scan of the primary key.
CREATE TABLE activity_monthly (
    month        INTEGER NOT NULL,
    jurisdiction TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    PRIMARY KEY (month, jurisdiction, user_id)
) STRICT, WITHOUT ROWID;
-- A user's rows (deletion).
CREATE INDEX activity_monthly_user ON activity_monthly (user_id);

-- Each action the engine decided beyond labels (notice, replace_reply, escalate, ...), with its
-- reasons. No chat text.
CREATE TABLE interventions (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    user_id      TEXT,
    session_id   TEXT,
    jurisdiction TEXT NOT NULL,
    kind         TEXT NOT NULL,
    detector     TEXT,
    side         TEXT,
    action       TEXT NOT NULL,  -- tutela_types::Action as JSON
    reasons      TEXT NOT NULL,  -- [tutela_types::Reason] as JSON
    audit_seq    INTEGER
) STRICT;
-- Transparency report: interventions by period, jurisdiction and kind.
CREATE INDEX interventions_at ON interventions (at, jurisdiction, kind);
CREATE INDEX interventions_user ON interventions (user_id, at);

-- The reasons of each intervention, one row each, for "interventions by rule".
CREATE TABLE intervention_reasons (
    intervention_id INTEGER NOT NULL REFERENCES interventions (id) ON DELETE CASCADE,
    profile         TEXT NOT NULL,
    obligation      TEXT NOT NULL,
    article         TEXT NOT NULL,
    PRIMARY KEY (intervention_id, profile, obligation, article)
) STRICT, WITHOUT ROWID;
CREATE INDEX intervention_reasons_rule ON intervention_reasons (profile, obligation);

-- Cases for a human (crisis protocol, C4).
CREATE TABLE escalations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      TEXT NOT NULL,
    session_id   TEXT,
    jurisdiction TEXT,
    status       TEXT NOT NULL,  -- open | claimed | resolved
    severity     TEXT NOT NULL,  -- low | medium | high | critical
    takeover     INTEGER NOT NULL,
    detector     TEXT,
    reasons      TEXT NOT NULL DEFAULT '[]',
    claimed_by   TEXT,
    resolution   TEXT,
    created_at   INTEGER NOT NULL,
    claimed_at   INTEGER,
    resolved_at  INTEGER
) STRICT;
-- The queue: open and claimed cases, oldest first.
CREATE INDEX escalations_status ON escalations (status, created_at);
-- Is there an open case (takeover) for this user?
CREATE INDEX escalations_user ON escalations (user_id, status);

-- Messages between the user and the human during a case. Content: personal data, deletable.
CREATE TABLE escalation_messages (
    id            INTEGER PRIMARY KEY,
    escalation_id INTEGER NOT NULL REFERENCES escalations (id) ON DELETE CASCADE,
    direction     TEXT NOT NULL,  -- from_user | to_user
    author        TEXT,           -- the staff member, for to_user
    body          TEXT NOT NULL,
    at            INTEGER NOT NULL,
    delivered_at  INTEGER         -- to_user: when the gateway handed it to the user
) STRICT;
CREATE INDEX escalation_messages_case ON escalation_messages (escalation_id, id);

-- Notifications to guardians and emergency contacts, delivered by a worker with retries.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    created_at      INTEGER NOT NULL,
    user_id         TEXT,
    escalation_id   INTEGER,
    contact_kind    TEXT NOT NULL,  -- guardian | emergency_contact
    channel         TEXT NOT NULL,
    target          TEXT NOT NULL,  -- webhook URL, e-mail address, ...
    payload         TEXT NOT NULL,  -- JSON
    status          TEXT NOT NULL,  -- pending | sent | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    sent_at         INTEGER
) STRICT;
-- The worker's "what is due?" query.
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_user ON outbox (user_id);

-- Event counters for reports (CA SB 243 referral count, CN Art 23 statistics). No personal
-- data: a name, a jurisdiction and a local day (report time zone).
CREATE TABLE counters (
    name         TEXT NOT NULL,
    jurisdiction TEXT NOT NULL,
    day          INTEGER NOT NULL,
    value        INTEGER NOT NULL,
    PRIMARY KEY (name, jurisdiction, day)
) STRICT, WITHOUT ROWID;

-- Data-rights requests (CN Art 16): export and deletion, by pseudonymous subject.
CREATE TABLE data_requests (
    id           INTEGER PRIMARY KEY,
    subject      TEXT NOT NULL,
    kind         TEXT NOT NULL,  -- export | deletion
    requested_at INTEGER NOT NULL,
    completed_at INTEGER
) STRICT;
CREATE INDEX data_requests_at ON data_requests (requested_at, kind);

-- The tamper-evident audit log. Append-only; every row is chained to the one before by
-- `prev_hash`, and `hash` is SHA-256 over the canonical encoding of all other columns
-- (see src/audit.rs). No chat text: only pseudonymous references and hashes.
CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    subject      TEXT,
    session      TEXT,
    jurisdiction TEXT,
    payload      TEXT NOT NULL,
    profile_hash TEXT NOT NULL,
    content_hash TEXT,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);

-- The last record of the chain, updated in the same transaction as each append, so that
-- deleting the newest records is detected too.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
) STRICT;

-- Refuse edits through ordinary SQL. Someone who drops these triggers is still caught by
-- `verify`; they only stop accidents.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
