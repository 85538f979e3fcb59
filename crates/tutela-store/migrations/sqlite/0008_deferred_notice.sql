-- tutela store, SQLite, version 8: the notice a person has not seen in a reply yet (issue 13).
-- A turn whose reply was for the app (structured output, a tool call) delivers its notices in
-- `tutela.notices` and the header only; their text goes before the person's next plain-text
-- reply. Kept here so a restart or a dropped cache entry does not lose it. JSON
-- (`{"text": ..., "notices": [...]}`): a rendered template of the law, never chat content.
-- NULL when there is none; deleted with the user row.
ALTER TABLE users ADD COLUMN deferred_notice TEXT;
ALTER TABLE users ADD COLUMN deferred_notice_at INTEGER; -- when it was deferred
