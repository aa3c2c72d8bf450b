-- +goose Up
ALTER TABLE instances ADD COLUMN impersonation_redirect_url TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE instances DROP COLUMN impersonation_redirect_url;
