-- tutela store, SQLite, version 7: how a user's age was established (issue 16).
-- none | self_declared | estimated | verified_document | nist_ial2; set by the operator through
-- the admin API; profiles gate features on a level (GA SB 540, AU eSafety Phase 2).
ALTER TABLE users ADD COLUMN age_assurance TEXT NOT NULL DEFAULT 'none';
