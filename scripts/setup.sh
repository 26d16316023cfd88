#!/usr/bin/env bash
# Create .venv with everything the demo and the tests need. Idempotent: a second run with an
# unchanged pyproject.toml does nothing. Order matters on these machines: torch==2.13.0 (the
# local CPU build) first and repeated in every install that pulls a torch dependant, or pip
# swaps in a CUDA build with gigabytes of nvidia packages.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
LOCK=requirements/lock.txt
stamp="$VENV/.kb-setup-$(cat pyproject.toml scripts/setup.sh "$LOCK" | sha256sum | cut -c1-16)"

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)  # query_metric tests; promtool for the alert rules
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)  # the Celery broker of kb worker (tests start their own)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages: ${need_apt[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup: warning: missing system packages (${need_apt[*]}); the tests that need them are skipped." >&2
  fi
fi

# pip -q still prints a warning per missing local index folder; keep real errors only.
pipq() {
  "$PY" -m pip install -q "$@" 2>&1 | { grep -v -e 'is ignored: it is neither a file nor a directory' || true; }
  return "${PIPESTATUS[0]}"
}

if [ -f "$stamp" ]; then
  exit 0
fi
echo "setup: creating $VENV (first run takes about two minutes)"
[ -x "$PY" ] || python3 -m venv "$VENV"
pipq --upgrade pip
pipq torch==2.13.0
# Exactly the locked versions (make lock regenerates the lock); --no-deps: the lock is complete,
# and no resolver run can swap in a CUDA torch.
pipq --no-deps -r "$LOCK"
pipq --no-deps -e .
pipq --no-deps whisperx==3.8.6
# The registry's torchaudio is a CUDA build; it runs without its C++ extension.
rm -f "$VENV"/lib/python3*/site-packages/torchaudio/lib/*.so
if "$PY" -m pip list 2>/dev/null | grep -qi '^nvidia'; then
  echo "setup: error: CUDA packages were installed; torch must stay at the local 2.13.0 CPU build" >&2
  exit 1
fi
rm -f "$VENV"/.kb-setup-*
sha256sum "$LOCK" | cut -d' ' -f1 > "$VENV/.kb-lock"   # tests/test_lock.py compares the venv with this lock
touch "$stamp"
echo "setup: done"
