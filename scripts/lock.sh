#!/usr/bin/env bash
# Regenerate requirements/lock.txt: every package `make setup` installs, at the versions the tests
# passed with (make lock). pip-tools resolves through pip's own configuration, so it sees the local
# torch CPU wheel (requirements/lock.in pins torch==2.13.0); whisperX is installed --no-deps by
# setup.sh and is not in the lock (its own pins conflict with pyannote 4, see ENVIRONMENT.md).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
"$VENV/bin/pip-compile" --quiet --extra all --extra dev --extra bench --strip-extras --allow-unsafe \
  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host --annotation-style line \
  -o requirements/lock.txt pyproject.toml requirements/lock.in
# The project itself is installed by setup.sh (-e .); a pinned file:// line would point at this checkout's path.
sed -i '/^kb-atoms @ file:/d' requirements/lock.txt
echo "lock: requirements/lock.txt ($(grep -c '==' requirements/lock.txt) packages)"
