#!/bin/sh
# The standby: on first start, a copy of the primary (pg_basebackup -R: standby.signal and
# primary_conninfo written), then Postgres as a hot standby. The copy brings the primary's
# synchronous_standby_names along; the command line clears it, so that once promoted this
# server does not wait for a standby of its own that does not exist.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -q -h primary -p 5432; do sleep 1; done
  PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup -h primary -p 5432 -U replicator -D "$PGDATA" -R -X stream -c fast
  chmod 700 "$PGDATA"
fi
exec postgres -c hot_standby=on -c synchronous_standby_names=
