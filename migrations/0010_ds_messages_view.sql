-- ds_messages, version 1: the streams as SQL, one row per message, read-only.
--
-- This view's shape is a PUBLIC INTERFACE (sinks and reports query it directly): its name
-- and its five columns below keep their meaning. A later migration that changes them must
-- say so in its own header and in the README, and bump the version in the comment below.
--
--   stream         text   the stream's path
--   stream_offset  text   the protocol offset just past this message (the Stream-Next-Offset
--                         a reader holds after it); text order is position order, so
--                         `WHERE stream_offset > $held` returns what `GET ?offset=$held` would
--   content_type   text   the stream's content type
--   data           bytea  the message's bytes exactly as reads return them
--   message        jsonb  the message as jsonb for JSON streams; NULL otherwise (and for the
--                         rare JSON message jsonb cannot hold: a \u0000 or a lone surrogate)
--
-- One row per message: per JSON message on JSON streams, per append on other streams
-- (small appends that share a chunk row, 0006, are cut apart again at their append_ends).
-- A fork lists its whole history under its own path: the source's messages below the fork
-- point (cut at the fork point, as reads cut them), then its own. Streams that reads do not
-- show (deleted, soft-deleted, expired) are not listed. Chunk compression (0002) is
-- Postgres' column compression (TOAST), which every SQL read undoes: `data` is plain bytes.

-- The jsonb of one stored JSON message, or NULL when jsonb refuses it (\u0000, lone
-- surrogates: JSON.stringify writes them, jsonb rejects them). Only messages holding a \u
-- escape get here (see the view), so the subtransaction of the handler is rarely paid.
-- Not PARALLEL SAFE: its EXCEPTION block starts a subtransaction, which a parallel worker
-- may not (compaction of a 1M-message stream got a parallel plan and failed with 25000).
CREATE FUNCTION ds_message_jsonb(data bytea) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  RETURN convert_from(data, 'UTF8')::jsonb;
EXCEPTION WHEN others THEN
  RETURN NULL;
END $$;

CREATE VIEW ds_messages AS
SELECT s.path AS stream,
       '0000000000000000_' || lpad(m.end_pos::text, 16, '0') AS stream_offset,
       s.content_type,
       m.data,
       CASE WHEN NOT s.is_json THEN NULL
            WHEN position('\x5c75'::bytea IN m.data) = 0 THEN convert_from(m.data, 'UTF8')::jsonb
            ELSE ds_message_jsonb(m.data) END AS message
FROM ds_streams s
CROSS JOIN LATERAL (
  -- The stream's offset space as the pieces each stream of its fork chain owns (the same
  -- split as segmentsFor in src/store/chunks.ts): [lo, hi) of `owner`'s chunk rows.
  WITH RECURSIVE seg (owner, lo, hi, source) AS (
    SELECT s.id, coalesce(s.fork_offset, 0), s.tail, s.fork_source
    UNION ALL
    SELECT src.id, coalesce(src.fork_offset, 0), least(seg.lo, seg.hi), src.fork_source
    FROM seg JOIN ds_streams src ON src.id = seg.source
  )
  SELECT greatest(a.start_pos, seg.lo) AS start_pos,
         least(a.end_pos, seg.hi) AS end_pos,
         CASE WHEN s.is_json THEN c.data -- a JSON row is one message; positions count messages
              ELSE substring(c.data FROM (greatest(a.start_pos, seg.lo) - c.start_pos + 1)::int4
                                    FOR (least(a.end_pos, seg.hi) - greatest(a.start_pos, seg.lo))::int4) END AS data
  FROM seg
  JOIN ds_chunks c ON c.stream_id = seg.owner AND c.start_pos < seg.hi AND c.end_pos > seg.lo
  -- A row's appends: one, or those its append_ends list (a shared row).
  CROSS JOIN LATERAL (
    SELECT coalesce(lag(e) OVER (ORDER BY i), c.start_pos) AS start_pos, e AS end_pos
    FROM unnest(coalesce(c.append_ends, ARRAY[c.end_pos])) WITH ORDINALITY AS x (e, i)
  ) a
  WHERE seg.hi > seg.lo AND a.end_pos > seg.lo AND a.start_pos < seg.hi
) m
WHERE s.path IS NOT NULL
  AND s.deleted_at IS NULL
  AND NOT ((s.expires_at IS NOT NULL AND s.expires_at <= clock_timestamp())
        OR (s.ttl_seconds IS NOT NULL AND s.last_access + s.ttl_seconds * interval '1 second' <= clock_timestamp()));

COMMENT ON VIEW ds_messages IS
  'pg-durable-streams ds_messages v1: one row per message (stream, stream_offset, content_type, data, message); read-only public interface';

-- ds_reader: may read ds_messages and nothing else (NOLOGIN: grant it to a login role).
-- Roles are cluster-wide, so instances migrating different schemas (or databases) at once
-- race on CREATE ROLE: whoever loses finds the role there, which is all it needs. A server
-- user without CREATEROLE skips the role with a notice; the view works without it.
DO $$
BEGIN
  BEGIN
    CREATE ROLE ds_reader NOLOGIN;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
  END;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO ds_reader', current_schema());
  GRANT SELECT ON ds_messages TO ds_reader;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'no privilege to create or grant to role ds_reader; ds_messages has no reader role';
END $$;
