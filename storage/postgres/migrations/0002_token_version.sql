-- Per-user token version (issue 11): every access token carries the version
-- it was issued under ("ver" claim) and is accepted only while it equals
-- this column. A password change or deactivation raises it in the same
-- UPDATE, which revokes every token issued before. Existing rows start at 0.
ALTER TABLE users ADD COLUMN token_version bigint NOT NULL DEFAULT 0;
