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

step "kb review: what needs a reviewer, and why (first lines)"
"$KB" -w "$WS" review > "$WS/review-queue.txt" || true
head -n 12 "$WS/review-queue.txt"

step "kb gaps guide: the next interview's questions"
"$KB" -w "$WS" gaps guide --interview next-interview || true
if [ -n "$bundle" ]; then
  step "kb ask, then a follow-up that needs it (the exchange is kept in .kb/chat/): \"I don't know\" carries over"
  "$KB" -w "$WS" ask "What does context deadline exceeded mean during a sync?" --bundle "$bundle" | head -n 8
  "$KB" -w "$WS" ask --follow-up "how do I fix it?" --bundle "$bundle" | head -n 8
  # a question the knowledge base answers: the same follow-up now uses the atom it cited
  "$KB" -w "$WS" ask "the argocd cli says x509: certificate signed by unknown authority" --bundle "$bundle" | head -n 4
  "$KB" -w "$WS" ask --follow-up "how do I fix it?" --bundle "$bundle" | head -n 8
fi
step "kb ops scan: triage of a demo Argo CD system's logs against the imported atoms"
mkdir -p "$WS/systems" "$WS/logs/argocd"
cp samples/systems/argocd-demo.yaml "$WS/systems/"
cp samples/systems/argocd-demo/logs/*.log "$WS/logs/argocd/"
"$KB" -w "$WS" ops scan --system argocd-demo --since all --max-groups 4
if [ -n "$bundle" ]; then
  step "kb tools + kb mcp: the tool registry MCP clients and the agents share"
  "$KB" -w "$WS" tools list
  "$KB" -w "$WS" tools call find_error --json '{"message": "Error: x509: certificate signed by unknown authority", "limit": 1}' | head -n 12
  "$KB" -w "$WS" mcp config --client claude
fi

step "done"
echo "workspace: $WS"
[ -d "$WS/build/site" ] && echo "review site: $WS/build/site/index.html"
[ -n "$bundle" ] && echo "bundle: $bundle"

step "kb setup new: an Argo CD Application from a situation (samples/argocd; each value cited or an assumption)"
cp -r samples/argocd/atoms/. "$WS/atoms/"
"$KB" -w "$WS" schemas add tests/data/change/argocd-application.schema.json --for 'deploy/*.yaml'
"$KB" -w "$WS" setup new "deploy the payments api from git into the payments namespace" --offline \
  --set argocd-application.yaml:/spec/destination/namespace=payments
head -n 20 "$WS"/proposals/setup-*/EXPLAIN.md

step "kb change plan: one change over six Applications (diff first; kb change apply ID applies it)"
mkdir -p "$WS/deploy" && cp samples/argocd/apps/*.yaml "$WS/deploy/"
(cd "$WS" && "$KB" change plan --files 'deploy/*.yaml' --where metadata.labels.team=payments \
  --set spec.syncPolicy.automated.prune=true --append spec.syncPolicy.syncOptions=PruneLast=true)
