#!/bin/sh
# Registers call-campaigns' custom search attributes (names and types as in src/contracts.ts).
# Idempotent: an attribute that already exists is left as it is.
set -eu
for pair in AppointmentId:Keyword PracticeId:Keyword CampaignId:Keyword Phase:Keyword Outcome:Keyword NextCallAt:Datetime; do
  name=${pair%%:*}; type=${pair#*:}
  temporal operator search-attribute create --namespace default --name "$name" --type "$type" 2>/dev/null \
    || echo "search attribute $name exists"
done
