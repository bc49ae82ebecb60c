CREATE TABLE users (
    id              uuid        PRIMARY KEY,
    email           text        NOT NULL,
    full_name       text,
    hashed_password text        NOT NULL,
    is_active       boolean     NOT NULL DEFAULT true,
    is_superuser    boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
CREATE INDEX users_created_at_id_idx ON users (created_at, id);
