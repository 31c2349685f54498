-- Chunk data is read far more often than written and is often already compressed or
-- random: lz4 compresses text cheaply and gives up on incompressible data fast, unlike
-- the default pglz. Builds without lz4 (PGlite) keep the default.
DO $$
BEGIN
  ALTER TABLE ds_chunks ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value OR undefined_object THEN
  RAISE NOTICE 'lz4 is not available; chunk data keeps the default compression';
END $$;
