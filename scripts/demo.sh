#!/usr/bin/env bash
# `make demo`: the whole pipeline on the shipped sample, in a scratch workspace (build/demo), so
# the repository itself is never modified. Offline: transcript import, extractive distillation,
# the bundled embedding model, DuckDB.
set -euo pipefail
cd "$(dirname "$0")/.."
KB="$PWD/.venv/bin/kb"
PY="$PWD/.venv/bin/python"
WS="$PWD/build/demo"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 NO_MKDOCS_2_WARNING=1

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$WS"
step "kb init $WS"
"$KB" -q init "$WS" --name "kb demo"
cp -r interviews/. "$WS/interviews/"

step "kb import-docs samples/docs (real public documentation, see samples/ATTRIBUTION.md)"
"$KB" -w "$WS" import-docs samples/docs --tag sample-docs

step "kb's own runbooks (samples/atoms: playbooks the Prometheus alerts link to)"
cp -r samples/atoms/. "$WS/atoms/"

step "kb run (transcribe -> distill -> check -> site -> export)"
set +e
"$KB" -w "$WS" run
rc=$?
set -e
if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then exit "$rc"; fi

step "kb run again: everything fresh is skipped"
"$KB" -w "$WS" run || true

bundle=$(ls -t "$WS"/dist/*.duckdb 2>/dev/null | head -n 1 || true)
if [ -n "$bundle" ]; then
  step "kb serve + ask over HTTP"
  "$PY" scripts/demo_ask.py --bundle "$bundle" --workspace "$WS"
fi

step "done"
echo "workspace: $WS"
[ -d "$WS/build/site" ] && echo "review site: $WS/build/site/index.html"
[ -n "$bundle" ] && echo "bundle: $bundle"
