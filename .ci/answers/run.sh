#!/usr/bin/env bash
# The answer-quality harness for nessus-mcp (issue 14), run from `.ci/run` after the interop
# matrix (or by hand from the repo root). It starts the real `nessus-mcp --demo --no-auth`
# on 127.0.0.1 with a temp data dir, imports real corpus files with import_scan and asks the
# analyst questions of answers.py through the official Python SDK (`mcp`, pinned in
# .ci/interop/run.sh: one pin for both). Ground truth comes from truth.py (ElementTree over
# the same XML). Exits non-zero on any wrong answer or when calls/tokens exceed the limits.
#   ANSWERS_BIN=path       reuse an already built nessus-mcp (default: cargo build, debug)
#   ANSWERS_PYTHON=path    reuse a python that has `mcp` at the pinned version (e.g. the
#                          interop matrix's venv); default: a fresh venv in the temp dir
#   ANSWERS_MARKDOWN=file  also write the table as Markdown there
#   ANSWERS_ARGS="..."     extra answers.py arguments (e.g. --only 'h|p' or --existing-only)
# Needs: cargo (unless ANSWERS_BIN), python3 (venv), curl.
set -uo pipefail
cd "$(dirname "$0")/../.."
HERE=.ci/answers

MCP_PY_VERSION=$(sed -n 's/^MCP_PY_VERSION="\([^"]*\)".*/\1/p' .ci/interop/run.sh)
[ -n "$MCP_PY_VERSION" ] || { echo "answers: no MCP_PY_VERSION pin in .ci/interop/run.sh" >&2; exit 1; }

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n=== answers: %s (%ss)\n' "$*" "$SECONDS"; }
die() { echo "answers: FAIL: $*" >&2; exit 1; }

if [ -n "${ANSWERS_BIN:-}" ]; then
    BIN=$ANSWERS_BIN
else
    step "build nessus-mcp"
    cargo build -p nessus-mcp --bins --locked --quiet || die "cargo build failed"
    BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/debug/nessus-mcp"
fi
[ -x "$BIN" ] || die "no nessus-mcp binary at $BIN"

if [ -n "${ANSWERS_PYTHON:-}" ]; then
    PY=$ANSWERS_PYTHON
else
    step "install mcp==$MCP_PY_VERSION into a venv"
    (python3 -m venv "$WORK/venv" && "$WORK/venv/bin/pip" install --quiet "mcp==$MCP_PY_VERSION") \
        >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log" >&2; die "installing mcp failed"; }
    PY="$WORK/venv/bin/python"
fi
have=$("$PY" -c 'import importlib.metadata as m; print(m.version("mcp"))' 2>/dev/null)
[ "$have" = "$MCP_PY_VERSION" ] || die "$PY has mcp ${have:-none}, the pin is $MCP_PY_VERSION"

step "start nessus-mcp --demo --no-auth"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/data/import"
NESSUS_MCP_TOKENS= "$BIN" --demo --no-auth --bind "127.0.0.1:$port" --data-dir "$WORK/data" \
    --import-dir "$WORK/data/import" >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 ||
    { cat "$WORK/server.out" "$WORK/server.log" >&2; die "the server did not come up"; }

step "ask the questions"
# shellcheck disable=SC2086 # ANSWERS_ARGS is a list of words
"$PY" "$HERE/answers.py" --url "http://127.0.0.1:$port/mcp" --import-dir "$WORK/data/import" \
    --corpus corpus/nessus ${ANSWERS_MARKDOWN:+--markdown "$ANSWERS_MARKDOWN"} ${ANSWERS_ARGS:-}
rc=$?
if [ "$rc" != 0 ]; then
    echo "answers: FAIL: some answers are wrong or over the limits (see the FAIL lines above);" \
        "server log tail:" >&2
    tail -5 "$WORK/server.log" >&2
fi
exit $rc
