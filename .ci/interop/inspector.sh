#!/usr/bin/env bash
# The agent flow with the MCP Inspector CLI (2.x) in strict mode, one CLI call per step:
# tools/list --strict (0 errors and 0 warnings required) -> run_untrusted_scan ->
# poll get_scan_status -> get_scan_results filtered to severity >= 3 -> resources/list ->
# resources/read nessus://schema/fields. Exits non-zero with one `FAIL:` line.
# Usage: inspector.sh INSPECTOR_BIN URL TOKEN TARGETS WORKDIR  (node 22 first on PATH)
set -uo pipefail
INSPECTOR=$1 URL=$2 TOKEN=$3 TARGETS=$4 W=$5
TARGET=$(echo "${TARGETS%%,*}" | tr -d ' ')
mkdir -p "$W/home"
# The CLI keeps a catalog and client config under $HOME; keep them out of the real one.
export HOME="$W/home" MCP_CATALOG_PATH="$W/home/mcp.json" MCP_CLIENT_CONFIG_PATH="$W/home/client.json"

fail() { [ -z "$strict_problem" ] || echo "FAIL: $strict_problem" >&2; echo "FAIL: $*" >&2; exit 1; }
strict_problem=""

cli() { # method [args...]; JSON result on stdout, stderr kept in $W/last.err
    "$INSPECTOR" --cli "$URL" --transport http --header "Authorization: Bearer $TOKEN" \
        --format json --method "$@" 2>"$W/last.err"
}

json() { python3 -c "import json,sys; r=json.load(sys.stdin)['result']; print(eval(sys.argv[1]))" "$1"; }

cli tools/list --strict >"$W/tools.json"
rc=$?
findings=$(grep -cE '^(Error|Warning): tool ' "$W/last.err")
if [ "$rc" != 0 ] || [ "$findings" != 0 ]; then
    summary=$(grep -E 'errors?, [0-9]+ warnings? across' "$W/last.err" | tail -1)
    first=$(grep -m1 -A2 '^Error: tool ' "$W/last.err" || grep -m1 -A2 '^Warning: tool ' "$W/last.err")
    # Reported first at the end; the rest of the flow still runs, so its results show too.
    strict_problem="tools/list --strict exit $rc: ${summary:-$(tail -1 "$W/last.err")} First: $(echo "$first" | tr -s ' \n' ' ')"
    grep -E '^(Error|Warning): tool |^  (Path|Issue):' "$W/last.err" | cut -c1-160
    echo "problem: $strict_problem"
else
    echo "tools/list --strict: $(json 'len(r["tools"])' <"$W/tools.json") tools, 0 errors, 0 warnings"
fi

cli tools/call --tool-name run_untrusted_scan \
    --tool-args-json "{\"targets\": \"$TARGET\", \"name\": \"inspector flow\"}" >"$W/sub.json" \
    || fail "run_untrusted_scan: $(tail -1 "$W/last.err")"
ID=$(json 'r["structuredContent"]["task_id"]' <"$W/sub.json") || fail "run_untrusted_scan: no task_id: $(head -c 300 "$W/sub.json")"
echo "submitted $ID"

status=""
for _ in $(seq 1 120); do
    cli tools/call --tool-name get_scan_status --tool-args-json "{\"task_id\": \"$ID\"}" >"$W/st.json" \
        || fail "get_scan_status: $(tail -1 "$W/last.err")"
    status=$(json 'r["structuredContent"]["status"]' <"$W/st.json")
    case $status in completed|failed|timeout|cancelled) break ;; esac
    sleep 1
done
[ "$status" = completed ] || fail "scan ended $status"
echo "completed"

cli tools/call --tool-name get_scan_results \
    --tool-args-json "{\"task_id\": \"$ID\", \"filters\": {\"severity\": \">=3\"}, \"page_size\": 10}" >"$W/res.json" \
    || fail "get_scan_results: $(tail -1 "$W/last.err")"
python3 - "$W/res.json" <<'EOF' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))["result"]
lines = [json.loads(l) for l in "".join(c.get("text", "") for c in r["content"]).splitlines() if l.strip()]
if not lines or lines[0].get("type") != "schema" or lines[-1].get("type") != "pagination":
    sys.exit("FAIL: get_scan_results is not schema ... pagination JSON-NL")
vulns = [l for l in lines if l.get("type") == "vulnerability"]
if any(v.get("severity", 0) < 3 for v in vulns):
    sys.exit("FAIL: the severity filter let a lower severity through")
print(f"{len(vulns)} findings with severity >= 3")
EOF

cli resources/list >"$W/resources.json" || fail "resources/list: $(tail -1 "$W/last.err")"
json '[x["uri"] for x in r["resources"]]' <"$W/resources.json" | grep -q 'nessus://schema/fields' \
    || fail "resources/list lacks nessus://schema/fields"
cli resources/read --uri nessus://schema/fields >"$W/read.json" || fail "resources/read: $(tail -1 "$W/last.err")"
n=$(json 'len(json.loads(r["contents"][0]["text"]))' <"$W/read.json") || fail "nessus://schema/fields is not JSON"
echo "read nessus://schema/fields ($n top-level keys)"
[ -z "$strict_problem" ] || { echo "FAIL: $strict_problem" >&2; exit 1; }
echo "inspector flow: OK"
