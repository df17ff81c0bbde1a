#!/bin/bash
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d).
# One role and one database per service: each service can reach only its own database, as in production.
# Passwords come from the Compose secrets /run/secrets/<service>_db_password (python deploy/devkeys.py init).
set -euo pipefail

secrets_dir="${SWITCHBOARD_SECRETS_DIR:-/run/secrets}"
for service in ingest policy routing metrics; do
  password="$(tr -d '\r\n' < "${secrets_dir}/${service}_db_password")"
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
       -v service="$service" -v password="$password" -v database="switchboard_${service}" <<'SQL'
CREATE ROLE :"service" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"service";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
\connect :"database"
-- PostgreSQL 15+ no longer lets every role create in public; the owner of the database owns the schema.
ALTER SCHEMA public OWNER TO :"service";
SQL
done
