-- tutela store, SQLite, version 3: covering indexes for the report queries, measured on
-- 1,000,000 users (3,000,000 usage rows, 1,000,000 sessions): each report query now reads one
-- index in order and never the table.

-- Daily usage minutes per day and jurisdiction: 2.4 s -> index only.
DROP INDEX usage_daily_day;
CREATE INDEX usage_daily_day ON usage_daily (day, jurisdiction, seconds, turns);

-- Session-duration distribution: the durations come from the index.
DROP INDEX sessions_started;
CREATE INDEX sessions_started ON sessions (started_at, ended_at, last_seen_at);

-- Monthly active users in total: distinct users of a month read in user order.
CREATE INDEX activity_monthly_users ON activity_monthly (month, user_id);

-- Registered users per jurisdiction: read in jurisdiction order, no temporary sort.
DROP INDEX users_registered;
CREATE INDEX users_registered ON users (jurisdiction, registered_at) WHERE deleted_at IS NULL;
