"""The agent flow with the official Python SDK (`mcp` on PyPI), over streamable HTTP or stdio.

connect -> tools/list -> run_untrusted_scan -> poll get_scan_status to completed ->
get_scan_results filtered to severity >= 3 -> resources/list -> read nessus://schema/fields.
The SDK itself validates every structured result against the tool's outputSchema.
Exits non-zero on the first failure, with one `FAIL:` line saying what broke.

    python py_sdk_flow.py --url URL --token TOKEN --targets "a, b" [--mode legacy]
    python py_sdk_flow.py --stdio BIN --data-dir DIR --targets "a, b"
`--stdio` runs `BIN --demo --stdio`: the demo's in-process simulator and generated config,
served on stdin/stdout (no banner there; logs go to stderr).
"""

import argparse
import asyncio
import os
import json
import sys
import time

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

TERMINAL = ("completed", "failed", "timeout", "cancelled")
PREDECESSOR_TOOLS = {
    "run_untrusted_scan", "run_authenticated_scan", "get_scan_status", "get_scan_results",
    "list_scanners", "list_pools", "get_pool_status", "get_queue_status", "list_tasks",
}


def fail(msg: str) -> None:
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)  # not sys.exit: inside the SDK's task groups that prints an exception group


def text_of(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def structured(name: str, result) -> dict:
    if result.is_error:
        fail(f"{name}: isError result: {text_of(result)[:300]}")
    if not isinstance(result.structured_content, dict):
        fail(f"{name}: no structured content")
    if "error" in result.structured_content:
        fail(f"{name}: business error: {result.structured_content['error']}")
    return result.structured_content


async def flow(client: Client, target: str, label: str) -> None:
    print(f"{label}: connected, protocol {client.protocol_version}")
    tools = {t.name: t for t in (await client.list_tools()).tools}
    missing = PREDECESSOR_TOOLS - tools.keys()
    if missing:
        fail(f"tools/list lacks {sorted(missing)}")
    print(f"{label}: {len(tools)} tools")

    sub = structured("run_untrusted_scan", await client.call_tool(
        "run_untrusted_scan",
        {"targets": target, "name": f"{label} flow", "idempotency_key": f"{label}-{time.time()}"},
    ))
    task_id = sub["task_id"]
    for key in ("queue_position", "estimated_wait_minutes"):
        if not isinstance(sub.get(key), int):
            fail(f"run_untrusted_scan: {key} is {sub.get(key)!r}, not an integer")
    print(f"{label}: submitted {task_id}")

    deadline = time.monotonic() + 120
    while True:
        st = structured("get_scan_status", await client.call_tool("get_scan_status", {"task_id": task_id}))
        if st["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            fail(f"scan still {st['status']} after 120 s")
        await asyncio.sleep(1)
    if st["status"] != "completed":
        fail(f"scan ended {st['status']}: {st.get('error_message')}")
    print(f"{label}: completed")

    res = await client.call_tool(
        "get_scan_results", {"task_id": task_id, "filters": {"severity": ">=3"}, "page_size": 10})
    if res.is_error:
        fail(f"get_scan_results: isError result: {text_of(res)[:300]}")
    lines = [json.loads(line) for line in text_of(res).splitlines() if line.strip()]
    if not lines or lines[0].get("type") != "schema" or lines[-1].get("type") != "pagination":
        fail(f"get_scan_results is not schema ... pagination JSON-NL: {text_of(res)[:200]}")
    vulns = [line for line in lines if line.get("type") == "vulnerability"]
    if any(v.get("severity", 0) < 3 for v in vulns):
        fail("get_scan_results: the severity filter let a lower severity through")
    print(f"{label}: {len(vulns)} findings with severity >= 3")

    listed = await client.list_resources()
    uris = [str(r.uri) for r in listed.resources]
    if "nessus://schema/fields" not in uris:
        fail(f"resources/list lacks nessus://schema/fields: {uris}")
    read = await client.read_resource("nessus://schema/fields")
    body = read.contents[0].text
    json.loads(body)
    print(f"{label}: read nessus://schema/fields ({len(body)} chars)")
    print(f"{label}: OK")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--token")
    ap.add_argument("--stdio", metavar="BIN", help="nessus-mcp binary to run with --demo --stdio")
    ap.add_argument("--data-dir")
    ap.add_argument("--targets", required=True)
    ap.add_argument("--mode", default="auto", help="auto (server/discover, 2026-07-28) or legacy (initialize)")
    args = ap.parse_args()
    target = args.targets.split(",")[0].strip()
    if args.stdio:
        params = StdioServerParameters(
            command=args.stdio,
            args=["--demo", "--stdio", "--data-dir", args.data_dir, "--demo-scan-secs", "2"],
            env={"RUST_LOG": "warn", "PATH": "/usr/bin:/bin"},
        )
        async with Client(params, read_timeout_seconds=60, mode=args.mode) as client:
            await flow(client, target, f"python-sdk-stdio-{args.mode}")
    else:
        http = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {args.token}"},
            timeout=httpx2.Timeout(30, read=300),
        )
        async with http, Client(streamable_http_client(args.url, http_client=http), mode=args.mode) as client:
            await flow(client, target, f"python-sdk-http-{args.mode}")


if __name__ == "__main__":
    asyncio.run(main())
