#!/usr/bin/env bash
# Interop checks for nessus-mcp, run from `.ci/run` (or by hand from the repo root):
#   1. the official MCP conformance suite against a token-less loopback server, for both
#      spec revisions, with the checked-in expected-failures baselines;
#   2. a Python fastmcp client running submit -> completed -> results against `--demo`.
# Everything binds to 127.0.0.1. Needs: cargo, npx (Node 22 is fetched from npm), python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=.ci/interop
CONFORMANCE_PKG="@modelcontextprotocol/conformance@0.2.0-alpha.12"
FASTMCP_VERSION="4.1.2"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n=== interop: %s (%ss)\n' "$*" "$SECONDS"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # url
    for _ in $(seq 1 100); do
        if curl -fsS "$1" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "server at $1 did not come up" >&2
    return 1
}

step "build nessus-mcp"
cargo build -p nessus-mcp --locked --quiet
BIN="${CARGO_TARGET_DIR:-target}/debug/nessus-mcp"

step "start a token-less loopback server for the conformance suite"
PORT=$(free_port)
NESSUS_MCP_TOKENS= "$BIN" --bind "127.0.0.1:$PORT" --demo --no-auth --data-dir "$WORK/conformance" \
    >"$WORK/conformance.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PORT/health"

status=0
for rev in 2026-07-28 2025-11-25; do
    step "conformance suite, requirements $rev"
    if ! npx -y -p node@22 -p "$CONFORMANCE_PKG" -- conformance server \
        --url "http://127.0.0.1:$PORT/mcp" --requirements "$rev" \
        --expected-failures "$HERE/expected-failures-$rev.yml" -o "$WORK/results-$rev"; then
        echo "conformance $rev: FAILED (new failure or stale baseline entry)" >&2
        status=1
    fi
done

step "fastmcp $FASTMCP_VERSION client against --demo"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet "fastmcp==$FASTMCP_VERSION"
DEMO_PORT=$(free_port)
"$BIN" --demo --bind "127.0.0.1:$DEMO_PORT" --data-dir "$WORK/demo" >"$WORK/demo.out" 2>"$WORK/demo.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$DEMO_PORT/health"
TOKEN=$(sed -n 's/^.*Bearer \([A-Za-z0-9_-]*\).*$/\1/p' "$WORK/demo.out" | head -1)
TARGETS=$(sed -n 's/^demo targets: //p' "$WORK/demo.out" | head -1)
if ! "$WORK/venv/bin/python" "$HERE/fastmcp_flow.py" \
    --url "http://127.0.0.1:$DEMO_PORT/mcp" --token "$TOKEN" --targets "$TARGETS"; then
    echo "fastmcp flow: FAILED; server log follows" >&2
    tail -50 "$WORK/demo.log" >&2
    status=1
fi

exit $status
