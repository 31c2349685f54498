# syntax=docker/dockerfile:1
# Debian's PgBouncer (1.18 in bookworm), the version the CI runs (.ci/run, scripts/conformance-pgbouncer.ts).
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pgbouncer gettext-base postgresql-client \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/pgbouncer.ini /etc/pgbouncer/policy.ini
COPY deploy/replicas/pgbouncer.ini.template /etc/pgbouncer/pgbouncer.ini.template
USER postgres
EXPOSE 6432
HEALTHCHECK --interval=5s --timeout=3s --retries=20 CMD ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "6432"]
# The password reaches PgBouncer's server logins from the environment, never the image.
CMD ["sh", "-c", "envsubst < /etc/pgbouncer/pgbouncer.ini.template > /tmp/pgbouncer.ini && exec pgbouncer /tmp/pgbouncer.ini"]
