#!/bin/sh
# Creates Temporal's two PostgreSQL databases (persistence and SQL visibility) and brings their schemas
# to the server's version with temporal-sql-tool. Safe to re-run: an existing database is kept, and
# update-schema applies only the versions a database lacks, so an existing volume upgrades in place.
#
# The same script runs in Compose (temporalio/admin-tools, service temporal-schema) and in the tests
# (src/dev/temporal-server.ts, with the binaries `npm run setup` builds), so both set up one schema.
#
# Environment: SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD (read by temporal-sql-tool itself);
# TEMPORAL_DB (default temporal), TEMPORAL_VISIBILITY_DB (default temporal_visibility);
# TEMPORAL_SQL_TOOL (default temporal-sql-tool on the PATH);
# TEMPORAL_SCHEMA_DIR (default /etc/temporal/schema/postgresql/v12, where admin-tools has it).
set -eu
: "${SQL_HOST:?set SQL_HOST to the PostgreSQL host}"
sql_tool=${TEMPORAL_SQL_TOOL:-temporal-sql-tool}
schema_dir=${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}
export SQL_PLUGIN=postgres12

setup() { # setup <database> <schema subdirectory>
  # create-database has no "if not exists": an existing database is the one case to go on from.
  if ! out=$("$sql_tool" --db "$1" create-database 2>&1); then
    case $out in
      *"already exists"*) echo "database $1 exists" ;;
      *) echo "$out" >&2; echo "temporal-schema: could not create database $1 (see above)" >&2; exit 1 ;;
    esac
  fi
  # -v 0.0 only marks an empty database as version 0.0 (a newer one is left alone).
  "$sql_tool" --db "$1" setup-schema -v 0.0
  "$sql_tool" --db "$1" update-schema -d "$schema_dir/$2/versioned"
}

setup "${TEMPORAL_DB:-temporal}" temporal
setup "${TEMPORAL_VISIBILITY_DB:-temporal_visibility}" visibility
echo "temporal-schema: done"
