-- Retention and compaction (PROTOCOL 4 "Retention", 5.6 410 Gone; notes/retention.md).
-- The creator's policy (Stream-Retention-Max-Age / -Max-Bytes, Stream-Compaction) is kept
-- as given, so an idempotent re-create compares it; operator rules are applied by the pass.
ALTER TABLE ds_streams
  ADD COLUMN retention_max_age   bigint,
  ADD COLUMN retention_max_bytes bigint,
  ADD COLUMN compaction          text,
  -- Position of the earliest retained data as this stream's readers see it (for a fork,
  -- also cut by its source's retention). Reads below it answer 410 Gone. Only grows.
  ADD COLUMN earliest            bigint NOT NULL DEFAULT 0,
  -- The due list of the background pass: NULL when no policy applies. Appends never
  -- change it, so indexing it does not stop their updates from being HOT.
  ADD COLUMN retention_due_at    timestamptz,
  ADD COLUMN retention_pass_at   timestamptz;
CREATE INDEX ds_streams_retention_due ON ds_streams (retention_due_at) WHERE retention_due_at IS NOT NULL;
-- When a row was appended: what age retention and the compaction grace period for deletes
-- measure. A constant default fills existing rows without rewriting the table, and the
-- append statement needs no change.
ALTER TABLE ds_chunks ADD COLUMN appended_at timestamptz NOT NULL DEFAULT now();
-- Compaction (store/retention.ts) reads a JSON message as jsonb with ds_message_jsonb from
-- 0010: NULL where jsonb cannot hold it (a \u0000 in a string is valid JSON but not valid
-- jsonb), and such a message is never taken for a change event, so compaction keeps it.
