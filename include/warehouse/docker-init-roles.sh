#!/bin/bash
# The warehouse's login roles, created once when the `warehouse` container initialises its
# data directory (docker-compose.yaml mounts this file into /docker-entrypoint-initdb.d/).
#
#   $POSTGRES_USER                 the owner (dealer_feed_owner): owns the database, runs migrations
#   airflow_dealer_feed            the DAGs' login, member of dealer_feed_loader (reads and writes rows,
#                                  creates nothing); password $WAREHOUSE_LOADER_PASSWORD
#   analyst                        a read-only login, member of dealer_feed_analyst;
#                                  password $WAREHOUSE_ANALYST_PASSWORD
#
# The group roles are the ones migration 0002_roles.postgresql.sql grants to (it creates them
# too when missing); creating them here first lets the logins join them before the owner
# migrates. Safe to run again: every role is created only when missing.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v loader_password="${WAREHOUSE_LOADER_PASSWORD:?set WAREHOUSE_LOADER_PASSWORD}" \
     -v analyst_password="${WAREHOUSE_ANALYST_PASSWORD:?set WAREHOUSE_ANALYST_PASSWORD}" <<'SQL'
SELECT 'CREATE ROLE dealer_feed_loader NOLOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dealer_feed_loader') \gexec
SELECT 'CREATE ROLE dealer_feed_analyst NOLOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dealer_feed_analyst') \gexec
SELECT format('CREATE ROLE airflow_dealer_feed LOGIN PASSWORD %L IN ROLE dealer_feed_loader', :'loader_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'airflow_dealer_feed') \gexec
SELECT format('CREATE ROLE analyst LOGIN PASSWORD %L IN ROLE dealer_feed_analyst', :'analyst_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'analyst') \gexec
SQL
