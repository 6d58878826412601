#!/usr/bin/env bash
# The MCP interop matrix for nessus-mcp, run from `.ci/run` (or by hand from the repo root).
# Every client is installed from its registry at a pinned version, once per run, into a temp
# dir: one npm project (Node 22 from npm, the TypeScript SDK, the TS client 2.x + ext-tasks,
# the Inspector, the conformance suite), one venv per fastmcp version (the newest one also
# holds the pinned Python SDK `mcp`). Each entry runs the agent flow
#   connect -> tools/list -> run_untrusted_scan -> poll to completed -> filtered
#   get_scan_results -> resources/list + read nessus://schema/fields
# (or its Tasks / predecessor-client variant) against `nessus-mcp --demo` on 127.0.0.1
# (the OAuth entry: sign-in at the test identity provider, scopes and step-up, against a
# nessus-mcp in OAuth mode),
# and the run ends with one table: entry -> pass/FAIL and the first error line.
# Exits non-zero if any entry fails. Needs: cargo, python3 (venv), npm, curl.
#   INTEROP_ONLY=regex   run only the entries whose name matches (e.g. 'fastmcp|tasks').
set -uo pipefail
cd "$(dirname "$0")/../.."
HERE=.ci/interop

# Pins. Bump deliberately; each bump is an interop change to review.
MCP_PY_VERSION="2.3.0"                # official Python SDK (PyPI `mcp`)
FASTMCP_OLD="2.13.0.2"                # the predecessor's fastmcp
FASTMCP_NEW="4.2.3"                   # newest fastmcp on PyPI when pinned (2026-12-07)
NPM_PKGS=(
    node@22                                   # Node 22 for the Inspector (needs >= 22.19)
    @modelcontextprotocol/sdk@1.32.2          # official TypeScript SDK
    @modelcontextprotocol/client@2.4.0        # TypeScript client 2.x (2026-07-28 wire)
    @modelcontextprotocol/ext-tasks@0.2.2     # MCP Tasks on top of it
    @modelcontextprotocol/inspector@2.12.0    # Inspector CLI (--strict schema lint)
    @modelcontextprotocol/conformance@0.2.0-alpha.12
)
LONG_SCAN_SECS=120                     # the server whose scans are cancelled while running

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    local t0=$SECONDS
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        # A draining server finishes its current step; do not let one hold CI for long.
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    echo "interop: servers stopped in $((SECONDS - t0)) s"
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n=== interop: %s (%ss)\n' "$*" "$SECONDS"; }
die() { echo "interop: $*" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "build nessus-mcp"
cargo build -p nessus-mcp --bins --locked --quiet || die "cargo build failed"
BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/debug/nessus-mcp"

step "install the clients (npm, two venvs), in parallel"
mkdir -p "$WORK/npm" "$WORK/logs"
echo '{"name":"nessus-interop","private":true,"type":"module"}' >"$WORK/npm/package.json"
(cd "$WORK/npm" && npm install --no-audit --no-fund --loglevel=error "${NPM_PKGS[@]}") \
    >"$WORK/logs/install-npm.log" 2>&1 &
npm_pid=$!
(python3 -m venv "$WORK/venv-new" && "$WORK/venv-new/bin/pip" install --quiet \
    "fastmcp==$FASTMCP_NEW" "mcp==$MCP_PY_VERSION") >"$WORK/logs/install-venv-new.log" 2>&1 &
new_pid=$!
(python3 -m venv "$WORK/venv-old" && "$WORK/venv-old/bin/pip" install --quiet \
    "fastmcp==$FASTMCP_OLD") >"$WORK/logs/install-venv-old.log" 2>&1 &
old_pid=$!
for p in npm:$npm_pid venv-new:$new_pid venv-old:$old_pid; do
    wait "${p#*:}" || { cat "$WORK/logs/install-${p%%:*}.log" >&2; die "installing ${p%%:*} failed"; }
done
NODE_BIN="$WORK/npm/node_modules/.bin"
"$NODE_BIN/node" --version | grep -q '^v22\.' || die "node@22 from npm did not install a Node 22 binary"
newest=$("$WORK/venv-new/bin/pip" index versions fastmcp 2>/dev/null | sed -n 's/^fastmcp (\(.*\))$/\1/p')
if [ -n "$newest" ] && [ "$newest" != "$FASTMCP_NEW" ]; then
    echo "notice: fastmcp $newest is on PyPI; the matrix pins $FASTMCP_NEW (bump FASTMCP_NEW)"
fi

# start_demo NAME SCAN_SECS [extra args]: a --demo server on a free loopback port; sets
# NAME_URL, NAME_TOKEN, NAME_TARGETS from its banner.
start_demo() {
    local name=$1 secs=$2 port
    shift 2
    port=$(free_port)
    "$BIN" --demo --bind "127.0.0.1:$port" --data-dir "$WORK/$name" --demo-scan-secs "$secs" "$@" \
        >"$WORK/$name.out" 2>"$WORK/logs/server-$name.log" &
    PIDS+=($!)
    for _ in $(seq 1 150); do
        grep -q '^demo targets: ' "$WORK/$name.out" 2>/dev/null && break
        sleep 0.2
    done
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null || {
        cat "$WORK/$name.out" "$WORK/logs/server-$name.log" >&2
        die "the $name server did not come up"
    }
    printf -v "${name}_URL" '%s' "$(sed -n 's/^MCP URL: //p' "$WORK/$name.out" | head -1)"
    printf -v "${name}_TOKEN" '%s' "$(sed -n 's/^Authorization: Bearer \([A-Za-z0-9_-]*\).*$/\1/p' "$WORK/$name.out" | head -1)"
    printf -v "${name}_TARGETS" '%s' "$(sed -n 's/^demo targets: //p' "$WORK/$name.out" | head -1)"
}

# start_oauth: nessus-mcp in OAuth mode (auth.oauth, no static token) beside the test
# identity provider (oidc-provider, nessus-mcp/tests/idp, on Node 22 from npm), whose
# tokens carry the server's /mcp URL as their resource (audience); sets oauth_URL and
# oauth_ISSUER. Scans are only queued (--workers 0): the entry checks sign-in and scopes.
start_oauth() {
    local port idp=nessus-mcp/tests/idp
    if [ ! -d "$idp/node_modules/oidc-provider" ]; then
        (cd "$idp" && npm ci --no-audit --no-fund --loglevel=error) >"$WORK/logs/install-idp.log" 2>&1 ||
            { cat "$WORK/logs/install-idp.log" >&2; die "npm ci in $idp failed"; }
    fi
    port=$(free_port)
    oauth_URL="http://127.0.0.1:$port/mcp"
    (cd "$idp" && exec "$NODE_BIN/node" idp.mjs "$oauth_URL") >"$WORK/idp.out" 2>"$WORK/logs/server-idp.log" &
    PIDS+=($!)
    for _ in $(seq 1 100); do grep -q '^IDP_URL ' "$WORK/idp.out" 2>/dev/null && break; sleep 0.2; done
    oauth_ISSUER=$(sed -n 's/^IDP_URL //p' "$WORK/idp.out" | head -1)
    [ -n "$oauth_ISSUER" ] || { cat "$WORK/logs/server-idp.log" >&2; die "the test identity provider did not start"; }
    mkdir -p "$WORK/oauth"
    cat >"$WORK/oauth/scanners.yaml" <<YAML
server:
  data_dir: "$WORK/oauth"
auth:
  oauth:
    issuer: "$oauth_ISSUER"
    audience: "$oauth_URL"
nessus:
  target_policy:
    allow: [192.0.2.0/24]
  instances:
    - instance_id: unused
      url: "http://127.0.0.1:9"
      access_key: unused
      secret_key: unused
YAML
    NESSUS_MCP_TOKENS= "$BIN" --config "$WORK/oauth/scanners.yaml" --bind "127.0.0.1:$port" --workers 0 \
        >"$WORK/oauth.out" 2>"$WORK/logs/server-oauth.log" &
    PIDS+=($!)
    for _ in $(seq 1 150); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return; sleep 0.2; done
    cat "$WORK/logs/server-oauth.log" >&2
    die "the OAuth server did not come up"
}

step "start the servers"
NESSUS_MCP_TOKENS= start_demo conf 2 --no-auth   # token-less, for the conformance suite
start_demo demo 2                                 # short scans for the flows
start_demo long "$LONG_SCAN_SECS"                 # long scans, cancelled while running
start_oauth                                       # OAuth resource server + test provider
echo "demo: $demo_URL (targets: $demo_TARGETS); long: $long_URL; conformance: $conf_URL"
echo "oauth: $oauth_URL (issuer $oauth_ISSUER)"

NAMES=() VERDICTS=() FIRSTS=() TIMES=()
# entry NAME CMD...: runs one matrix entry, its output indented in the CI log and kept in
# $WORK/logs/NAME.log; the first `FAIL:` line (else the last line) is its error line.
entry() {
    local name=$1 log="$WORK/logs/$1.log" t0=$SECONDS rc first
    shift
    if [ -n "${INTEROP_ONLY:-}" ] && ! [[ $name =~ $INTEROP_ONLY ]]; then return; fi
    step "$name"
    "$@" >"$log" 2>&1
    rc=$?
    sed 's/^/  | /' "$log"
    NAMES+=("$name") TIMES+=($((SECONDS - t0)))
    if [ "$rc" = 0 ]; then
        VERDICTS+=(pass) FIRSTS+=("")
    else
        first=$(grep -m1 '^FAIL' "$log" || true)
        [ -n "$first" ] || first=$(grep -v '^\s*$' "$log" | tail -1)
        VERDICTS+=(FAIL) FIRSTS+=("${first:-exit $rc}")
    fi
}

conformance() { # REV
    PATH="$NODE_BIN:$PATH" "$NODE_BIN/conformance" server --url "$conf_URL" --requirements "$1" \
        --expected-failures "$HERE/expected-failures-$1.yml" -o "$WORK/results-$1" ||
        { echo "FAIL: conformance $1: a new failure or a stale baseline entry (see above)"; return 1; }
}

ts_sdk() { # the flow, plus: no ajv schema warning may reach stderr
    PATH="$NODE_BIN:$PATH" node "$WORK/npm/ts_sdk_flow.mjs" "$demo_URL" "$demo_TOKEN" "$demo_TARGETS" \
        2>"$WORK/ts-sdk.err"
    local rc=$?
    cat "$WORK/ts-sdk.err"
    local n
    n=$(grep -c 'unknown format .* ignored in schema' "$WORK/ts-sdk.err")
    if [ "$n" != 0 ]; then
        echo "FAIL: $n stderr lines like: $(grep -m1 'unknown format .* ignored in schema' "$WORK/ts-sdk.err")"
        return 1
    fi
    return $rc
}

# The TS scripts import from the temp npm project; Node resolves packages relative to the
# script, so they run from a copy inside it.
cp "$HERE"/*.mjs "$WORK/npm/"
PY_NEW="$WORK/venv-new/bin/python"
PY_OLD="$WORK/venv-old/bin/python"

entry "conformance 2026-07-28" conformance 2026-07-28
entry "conformance 2025-11-25" conformance 2025-11-25
entry "python-sdk $MCP_PY_VERSION http" "$PY_NEW" "$HERE/py_sdk_flow.py" \
    --url "$demo_URL" --token "$demo_TOKEN" --targets "$demo_TARGETS"
entry "python-sdk $MCP_PY_VERSION http legacy" "$PY_NEW" "$HERE/py_sdk_flow.py" \
    --url "$demo_URL" --token "$demo_TOKEN" --targets "$demo_TARGETS" --mode legacy
entry "python-sdk $MCP_PY_VERSION stdio" "$PY_NEW" "$HERE/py_sdk_flow.py" \
    --stdio "$BIN" --data-dir "$WORK/stdio" --targets "$demo_TARGETS"
entry "python-sdk $MCP_PY_VERSION oauth (auth code + PKCE, step-up)" "$PY_NEW" \
    "$HERE/py_sdk_oauth.py" --url "$oauth_URL" --issuer "$oauth_ISSUER" --targets "$demo_TARGETS"
entry "typescript-sdk 1.32.2" ts_sdk
entry "inspector 2.12.0 --strict" env PATH="$NODE_BIN:$PATH" bash "$HERE/inspector.sh" \
    "$NODE_BIN/inspector" "$demo_URL" "$demo_TOKEN" "$demo_TARGETS" "$WORK/inspector"
entry "fastmcp $FASTMCP_OLD predecessor client" "$PY_OLD" "$HERE/fastmcp_client.py" \
    --url "$demo_URL" --token "$demo_TOKEN" --targets "$demo_TARGETS"
entry "fastmcp $FASTMCP_NEW predecessor client" "$PY_NEW" "$HERE/fastmcp_client.py" \
    --url "$demo_URL" --token "$demo_TOKEN" --targets "$demo_TARGETS"
entry "tasks python-sdk completed" "$PY_NEW" "$HERE/py_sdk_tasks.py" \
    --url "$demo_URL" --token "$demo_TOKEN" --targets "$demo_TARGETS" --expect completed
entry "tasks python-sdk cancelled" "$PY_NEW" "$HERE/py_sdk_tasks.py" \
    --url "$long_URL" --token "$long_TOKEN" --targets "$long_TARGETS" --expect cancelled
entry "tasks ts-client+ext-tasks completed" env PATH="$NODE_BIN:$PATH" node "$WORK/npm/ts_tasks.mjs" \
    "$demo_URL" "$demo_TOKEN" "$demo_TARGETS" completed
entry "tasks ts-client+ext-tasks cancelled" env PATH="$NODE_BIN:$PATH" node "$WORK/npm/ts_tasks.mjs" \
    "$long_URL" "$long_TOKEN" "$long_TARGETS" cancelled

step "summary"
status=0
printf '%-42s %-5s %5s  %s\n' "client" "" "secs" "first error"
for i in "${!NAMES[@]}"; do
    printf '%-42s %-5s %5s  %s\n' "${NAMES[$i]}" "${VERDICTS[$i]}" "${TIMES[$i]}" "${FIRSTS[$i]:0:220}"
    [ "${VERDICTS[$i]}" = pass ] || status=1
done
if [ "$status" != 0 ]; then
    echo "interop: some entries failed; server logs: tail of each follows" >&2
    for f in "$WORK"/logs/server-*.log; do echo "--- $f" >&2; tail -5 "$f" >&2; done
fi
exit $status
