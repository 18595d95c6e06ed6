#!/usr/bin/env sh
# The CI gate (and pre-commit hook): every playbook validates against every
# environment, with nothing contacted and no secret needed. Exit 3 names the
# file, line and column of each error. In a Harness PR pipeline, run it in a
# Shell Script step; add `--output json` for machine-readable findings.
set -eu
cd "$(dirname "$0")/.."
status=0
for env in environments/*.yaml; do
    # shellcheck disable=SC2046
    runsheet validate playbooks/*.yaml --env "$env" || status=$?
done
exit "$status"
