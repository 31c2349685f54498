-- Small binary appends committed in one group to one stream share a chunk row (fewer rows
-- to insert and to read back). Such a row lists where each of its appends ends, which a
-- fork's sub-offset may not pass (PROTOCOL 4.2); NULL for a row of a single append, whose
-- batch_end says it. Adding a nullable column rewrites nothing.
ALTER TABLE ds_chunks ADD COLUMN append_ends bigint[];
