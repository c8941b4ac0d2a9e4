#!/bin/sh
# Creates the namespace the workers use and registers call-campaigns' custom search attributes
# (names and types as SEARCH_ATTRIBUTE_TYPES in src/contracts.ts; test/compose.test.ts keeps them
# equal), through the frontend's operator API with the Temporal CLI. Safe to re-run: what exists is kept.
#
# The same script runs in Compose (temporalio/admin-tools, service temporal-namespace) and in the
# tests (src/dev/temporal-server.ts), so both register the same attributes.
#
# Environment: TEMPORAL_ADDRESS (read by the CLI), TEMPORAL_NAMESPACE (default `default`),
# TEMPORAL_RETENTION (default 72h), TEMPORAL_CLI (default temporal on the PATH),
# SETUP_DEADLINE_SECONDS (default 120: how long to wait for the server to answer).
set -eu
cli=${TEMPORAL_CLI:-temporal}
namespace=${TEMPORAL_NAMESPACE:-default}
deadline=$(( $(date +%s) + ${SETUP_DEADLINE_SECONDS:-120} ))
SEARCH_ATTRIBUTES="AppointmentId:Keyword PracticeId:Keyword CampaignId:Keyword Phase:Keyword Outcome:Keyword NextCallAt:Datetime"

# retry <what> <command...>: the server may still be starting, or not yet see a namespace it just created.
retry() {
  what=$1; shift
  until out=$("$@" 2>&1); do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "$out" >&2; echo "temporal-namespace: $what failed until the deadline (SETUP_DEADLINE_SECONDS)" >&2; exit 1
    fi
    sleep 1
  done
}

retry "the server's health check" "$cli" operator cluster health
if "$cli" operator namespace describe --namespace "$namespace" >/dev/null 2>&1; then
  echo "namespace $namespace exists"
else
  retry "creating namespace $namespace" "$cli" operator namespace create --namespace "$namespace" --retention "${TEMPORAL_RETENTION:-72h}"
fi

retry "listing search attributes" "$cli" operator search-attribute list --namespace "$namespace"
existing=$out
for pair in $SEARCH_ATTRIBUTES; do
  name=${pair%%:*}; type=${pair#*:}
  if printf '%s\n' "$existing" | grep -qw "$name"; then
    echo "search attribute $name exists"
  else
    retry "registering search attribute $name" "$cli" operator search-attribute create --namespace "$namespace" --name "$name" --type "$type"
  fi
done
echo "temporal-namespace: done"
