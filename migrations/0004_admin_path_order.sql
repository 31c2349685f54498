-- The admin listing (src/store/admin.ts) walks streams in byte order of their path: keyset
-- pages ("path > last seen") and prefix filters (a range [prefix, next prefix)). A
-- "C"-collated index gives that order whatever collation the database was created with,
-- so both are one index range scan, never a scan of the table. Appends never change the
-- path, so this index does not stop their updates from being HOT.
CREATE INDEX ds_streams_path_c ON ds_streams (path COLLATE "C") WHERE path IS NOT NULL;
