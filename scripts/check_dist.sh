#!/usr/bin/env bash
# Build the sdist and the wheel, install the wheel (core only, no extras) into a clean venv and run
# kb there: --help, init, import-docs, check. Proves the distribution carries its package data
# (templates, prompts) and that the core install works without the optional extras.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$REPO/$VENV" ;; esac
PY="$VENV/bin/python"
[ -x "$PY" ] || PY=python3
work=$(mktemp -d "${TMPDIR:-/tmp}/kb-dist.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo "dist-check: $*"; }

step "building sdist and wheel"
"$PY" -m build --no-isolation --sdist --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/kb_atoms-*.whl)
sdist=$(ls "$work"/dist/kb_atoms-*.tar.gz)
tar -tzf "$sdist" >"$work/sdist.txt"
"$PY" -m zipfile -l "$wheel" >"$work/wheel.txt"
for f in pipeline/templates/workspace/kb.yaml pipeline/templates/site/assets/kb.css pipeline/prompts/distill-v1.md; do
  grep -q "/$f\$" "$work/sdist.txt" || { echo "dist-check: $f missing from $(basename "$sdist")" >&2; exit 1; }
  grep -q "^$f " "$work/wheel.txt" || { echo "dist-check: $f missing from $(basename "$wheel")" >&2; exit 1; }
done

step "installing $(basename "$wheel") into a clean venv (no extras)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
kb="$work/venv/bin/kb"

step "kb --help, init, import-docs, check"
cd "$work"
"$kb" --help >"$work/kb.log" 2>&1 || { cat "$work/kb.log"; exit 1; }
"$kb" init ws >"$work/kb.log" 2>&1 || { cat "$work/kb.log"; exit 1; }
cp -r "$REPO/samples/docs" "$work/docs"
"$kb" -w ws import-docs docs >"$work/kb.log" 2>&1 || { cat "$work/kb.log"; exit 1; }
set +e
"$kb" -w ws check >"$work/check.out" 2>&1
code=$?
set -e
if [ "$code" != 0 ] && [ "$code" != 3 ]; then  # 3: check found problems in the drafts, which is fine here
  cat "$work/check.out"; echo "dist-check: kb check exited $code" >&2; exit 1
fi
step "ok ($(tail -1 "$work/check.out"))"
