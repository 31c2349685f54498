-- A subscription covers only streams its creator may read (subscriptions/scope.ts): who
-- created it ({"principal", "source": "token" | "jwt", "read": [their read globs]}), so
-- every answer and every wake is filtered by it, also after the creator's grants change.
-- NULL for subscriptions created without auth: they cover every stream they match.
ALTER TABLE ds_subscriptions ADD COLUMN scope jsonb;
