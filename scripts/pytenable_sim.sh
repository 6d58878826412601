#!/usr/bin/env bash
# Proves the simulator is faithful enough for an independent client: installs pyTenable
# from PyPI into a throwaway virtualenv, starts the simulator (the `sim` example) on a
# free loopback port, and runs scripts/pytenable_sim.py against it.
#
#   bash scripts/pytenable_sim.sh          # exits non-zero on any failure
#
# Set PYTENABLE_VENV to reuse a virtualenv that already has pytenable installed.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${PYTENABLE_VENV:-}"
if [[ -z "$venv" ]]; then
    venv="$(mktemp -d)/venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet pytenable
fi

cargo build --quiet -p nessus-examples --example sim
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

log="$(mktemp)"
"$target_dir/debug/examples/sim" "127.0.0.1:$port" --scan-secs 2 >"$log" 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true; rm -f "$log"' EXIT

for _ in $(seq 1 100); do
    grep -q "listening on" "$log" && break
    kill -0 "$sim_pid" 2>/dev/null || { cat "$log" >&2; echo "simulator exited" >&2; exit 1; }
    sleep 0.1
done
grep -q "listening on" "$log" || { cat "$log" >&2; echo "simulator did not start" >&2; exit 1; }

"$venv/bin/python" scripts/pytenable_sim.py "http://127.0.0.1:$port"
