#!/bin/sh
# Runs once, when the primary's data directory is first made (docker-entrypoint-initdb.d).
# A role for the standby's streaming replication, and synchronous replication: from the
# next start every commit (every acknowledged append) waits until the standby has flushed it.
# Set with ALTER SYSTEM, not on the command line: the image's first start (this script's)
# must not wait for a standby that does not exist yet.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '${REPLICATION_PASSWORD}';
ALTER SYSTEM SET synchronous_standby_names = '*';
ALTER SYSTEM SET synchronous_commit = 'on';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
