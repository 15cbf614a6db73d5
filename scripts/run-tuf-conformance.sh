#!/usr/bin/env bash
# Run the tuf-conformance suite (theupdateframework/tuf-conformance, a checkout of its
# v2.4.0 tag OUTSIDE this repository) against patchline-tuf-client, the agent's TUF client.
#
#   scripts/run-tuf-conformance.sh PATH_TO_CHECKOUT [extra pytest arguments]
#
# Installs faketime from Debian (the suite moves the clock both ways with it), makes a
# virtualenv for the suite inside the checkout, and prints the pass count.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -d "$1/tuf_conformance" ]; then
    echo "usage: $0 PATH_TO_TUF_CONFORMANCE_CHECKOUT [pytest args]" >&2
    exit 2
fi
SUITE="$(cd "$1" && pwd)"
shift
REPO="$(cd "$(dirname "$0")/.." && pwd)"

if ! command -v faketime >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends faketime
fi

# The client under test: one executable, installed by this repository's packaging.
if [ ! -x "$REPO/.venv/bin/patchline-tuf-client" ]; then
    [ -x "$REPO/.venv/bin/python" ] || python3 -m venv "$REPO/.venv"
    "$REPO/.venv/bin/pip" install --quiet -e "$REPO"
fi
CLIENT="$REPO/.venv/bin/patchline-tuf-client"

# The suite's own environment (it pins its own python-tuf for the repository side).
if [ ! -x "$SUITE/env/bin/pytest" ]; then
    python3 -m venv "$SUITE/env"
    "$SUITE/env/bin/pip" install --quiet --upgrade pip
    "$SUITE/env/bin/pip" install --quiet -e "$SUITE"
fi

cd "$SUITE"
set +e
"$SUITE/env/bin/pytest" tuf_conformance -q -p no:cacheprovider \
    --entrypoint "$CLIENT" --repository-dump-dir "$(mktemp -d)" "$@" | tee /tmp/tuf-conformance.log
status=${PIPESTATUS[0]}
set -e
echo "tuf-conformance: $(tail -n 1 /tmp/tuf-conformance.log)"
exit "$status"
