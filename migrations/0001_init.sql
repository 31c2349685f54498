-- Streams: one row per stream. A stream's identity is its id; its path is released
-- (set to NULL) once it is gone, so the path can be used again while forks still read
-- the old data through the id.
CREATE TABLE ds_streams (
  id              bigserial PRIMARY KEY,
  path            text,
  content_type    text        NOT NULL,
  is_json         boolean     NOT NULL,
  ttl_seconds     bigint,
  expires_at      timestamptz,
  last_access     timestamptz NOT NULL DEFAULT now(),
  created_at      timestamptz NOT NULL DEFAULT now(),
  -- tail position: bytes for binary streams, messages for JSON streams
  tail            bigint      NOT NULL DEFAULT 0,
  closed          boolean     NOT NULL DEFAULT false,
  closed_by_id    text,
  closed_by_epoch bigint,
  closed_by_seq   bigint,
  last_seq        text,
  -- fork: data below fork_offset is read from fork_source
  fork_source     bigint REFERENCES ds_streams (id),
  fork_offset     bigint,
  ref_count       integer     NOT NULL DEFAULT 0,
  -- set when DELETE hit a stream that still has forks (410 Gone for direct access)
  deleted_at      timestamptz
) WITH (fillfactor = 50); -- room for HOT updates: every append rewrites the row's tail
CREATE UNIQUE INDEX ds_streams_path ON ds_streams (path) WHERE path IS NOT NULL;
CREATE INDEX ds_streams_expiry ON ds_streams (expires_at) WHERE expires_at IS NOT NULL;
-- Not on last_access: an indexed column that every touch changes would defeat HOT updates.
CREATE INDEX ds_streams_ttl ON ds_streams (id) WHERE ttl_seconds IS NOT NULL;
CREATE INDEX ds_streams_fork_source ON ds_streams (fork_source) WHERE fork_source IS NOT NULL;

-- Chunks: one row per accepted append (binary) or per message (JSON), keyed by
-- stream id first so the table can later be distributed by stream id.
CREATE TABLE ds_chunks (
  stream_id bigint NOT NULL,
  start_pos bigint NOT NULL,
  end_pos   bigint NOT NULL,
  data      bytea  NOT NULL,
  -- end position of the whole append this row came from (JSON batches span many rows);
  -- a fork sub-offset may not pass it
  batch_end bigint NOT NULL,
  PRIMARY KEY (stream_id, start_pos)
);

-- Idempotent producer state, committed in the same transaction as the data.
CREATE TABLE ds_producers (
  stream_id   bigint      NOT NULL,
  producer_id text        NOT NULL,
  epoch       bigint      NOT NULL,
  last_seq    bigint      NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream_id, producer_id)
);
