-- The retention pass's schedule (issue 28, item 6): one row per stream under a policy, apart
-- from ds_streams. Claiming a stream, pacing it and counting what it stores never lock or
-- rewrite the stream row, which every append updates; that row is touched only when the
-- earliest offset moves. ds_streams.retention_due_at now only marks a stream as under a
-- policy (set at create or when an operator rule adopts it, cleared when none applies).
CREATE TABLE ds_retention (
  stream_id  bigint PRIMARY KEY REFERENCES ds_streams (id) ON DELETE CASCADE,
  -- Not visited before this: RETENTION_INTERVAL_MS after the last visit, or a claim's lease.
  due_at     timestamptz NOT NULL DEFAULT now(),
  -- Visited once this has passed even if nothing was appended: the oldest retained row
  -- reaching the age limit, or a compacted delete reaching the end of its grace period.
  wake_at    timestamptz,
  -- The stream's tail when a visit last counted its rows (NULL: never counted).
  seen_tail  bigint,
  -- Bytes of the stream's own stored rows below seen_tail (what a size limit compares).
  kept_bytes bigint      NOT NULL DEFAULT 0,
  -- Whether any append makes the stream due (compaction; an age limit with nothing retained).
  on_append  boolean     NOT NULL DEFAULT true,
  -- The size limit applied at the last visit: an append makes the stream due only once the
  -- stored bytes can exceed it (binary streams, whose positions count bytes; JSON streams
  -- are due after any append).
  size_limit bigint,
  pass_at    timestamptz
);
CREATE INDEX ds_retention_due ON ds_retention (due_at);
INSERT INTO ds_retention (stream_id) SELECT id FROM ds_streams WHERE retention_due_at IS NOT NULL;
ALTER TABLE ds_streams DROP COLUMN retention_pass_at;
