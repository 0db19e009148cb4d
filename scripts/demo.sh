#!/usr/bin/env bash
# Set up (if needed) and run the demo: a whole commune day in under a minute, offline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/broadcaster demo "$@"
