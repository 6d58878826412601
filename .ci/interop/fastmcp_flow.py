"""End-to-end flow with the Python fastmcp client against `nessus-mcp --demo`.

submit -> poll until completed -> a filtered results page -> list_tasks -> cancel a
queued scan, all over streamable HTTP with a bearer token. Exits non-zero on any failure.
"""

import argparse
import asyncio
import json
import sys
import time

from fastmcp import Client
from fastmcp.client.auth import BearerAuth
from fastmcp.client.transports import StreamableHttpTransport


def fail(msg: str) -> None:
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def data(result):
    if result.is_error:
        fail(f"tool error: {result.content[0].text}")
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--targets", required=True)
    args = ap.parse_args()
    first_target = args.targets.split(",")[0].strip()

    transport = StreamableHttpTransport(args.url, auth=BearerAuth(args.token))
    async with Client(transport) as client:
        print(f"connected, protocol {getattr(client, 'protocol_version', '?')}")
        tools = {t.name: t for t in await client.list_tools()}
        expected = {
            "run_untrusted_scan", "run_authenticated_scan", "get_scan_status", "get_scan_results",
            "list_tasks", "list_scanners", "list_pools", "get_pool_status", "get_queue_status",
            "cancel_scan", "diff_scans",
        }
        missing = expected - tools.keys()
        if missing:
            fail(f"missing tools: {sorted(missing)}")
        for name, t in tools.items():
            if t.annotations is None or getattr(t.annotations, "read_only_hint", None) is None:
                fail(f"tool {name} has no readOnlyHint annotation")
        print(f"{len(tools)} tools, all annotated")

        pools = data(await client.call_tool("list_pools", {}))
        print(f"pools: {pools}")

        refused = await client.call_tool(
            "run_untrusted_scan", {"targets": "8.8.8.8", "name": "outside policy"},
            raise_on_error=False,
        )
        if not refused.is_error or "target_not_allowed" not in refused.content[0].text:
            fail("a target outside the policy was not refused")
        print("out-of-policy target refused")

        sub = data(await client.call_tool(
            "run_untrusted_scan",
            {"targets": first_target, "name": "fastmcp flow", "idempotency_key": f"fm-{time.time()}"},
        ))
        task_id = sub["task_id"]
        print(f"submitted {task_id}: position {sub['queue_position']}, eta {sub['estimated_wait_minutes']} min")

        deadline = time.monotonic() + 120
        while True:
            st = data(await client.call_tool("get_scan_status", {"task_id": task_id}))
            if st["status"] in ("completed", "failed", "timeout", "cancelled"):
                break
            if time.monotonic() > deadline:
                fail(f"scan still {st['status']} after 120 s")
            await asyncio.sleep(1)
        if st["status"] != "completed":
            fail(f"scan ended {st['status']}: {st.get('error_message')}")
        print(f"completed: {st.get('results_summary')}")

        res = await client.call_tool(
            "get_scan_results",
            {"task_id": task_id, "filters": {"severity": ">=3"}, "page_size": 10},
        )
        if res.is_error:
            fail(f"results: {res.content[0].text}")
        lines = [json.loads(l) for l in res.content[0].text.splitlines() if l.strip()]
        if lines[0].get("type") != "schema" or lines[-1].get("type") != "pagination":
            fail("results are not framed as schema ... pagination")
        vulns = [l for l in lines if l.get("type") == "vulnerability"]
        if any(v.get("severity", 0) < 3 for v in vulns):
            fail("the severity filter let a lower severity through")
        print(f"results page: {len(vulns)} findings with severity >= 3")

        listed = data(await client.call_tool("list_tasks", {"limit": 5}))
        if task_id not in [t["task_id"] for t in listed["tasks"]]:
            fail("list_tasks does not show the task")

        q = data(await client.call_tool(
            "run_untrusted_scan", {"targets": first_target, "name": "to cancel"}))
        c = data(await client.call_tool("cancel_scan", {"task_id": q["task_id"]}))
        print(f"cancel: {c['status']} ({c['message']})")
        if c["status"] not in ("cancelled", "running"):
            fail(f"cancel left status {c['status']}")
    print("fastmcp flow: OK")


if __name__ == "__main__":
    asyncio.run(main())
