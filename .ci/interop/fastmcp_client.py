"""The predecessor's own client, `NessusFastMCPClient`, and its tests, against nessus-mcp.

A port of `mcp-server/client/nessus_fastmcp_client.py` (seed-spec §14): it wraps
`fastmcp.Client`, returns fastmcp's `result.data` and reads it as a dict
(`data["task_id"]`, `"error" in data`), and `get_results` returns the JSON-NL string.
The one change: a bearer token (the predecessor had no auth). Run with each fastmcp
version under test; prints one line per test and exits non-zero if any test fails.

    python fastmcp_client.py --url URL --token TOKEN --targets "a, b"
"""

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from typing import Any

import fastmcp
from fastmcp import Client
from fastmcp.client.auth import BearerAuth
from fastmcp.client.transports import StreamableHttpTransport

PREDECESSOR_TOOLS = {
    "run_untrusted_scan", "run_authenticated_scan", "get_scan_status", "get_scan_results",
    "list_scanners", "list_pools", "get_pool_status", "get_queue_status", "list_tasks",
}


class NessusFastMCPClient:
    """The predecessor's client API (seed-spec §14), method for method."""

    def __init__(self, url: str | None = None, timeout: float = 30.0, token: str | None = None):
        self.url = url or os.environ.get("MCP_SERVER_URL", "http://localhost:8836/mcp")
        self.timeout = timeout
        transport = StreamableHttpTransport(self.url, auth=BearerAuth(token) if token else None)
        self._client = Client(transport, timeout=timeout)
        self._connected = False

    async def __aenter__(self) -> "NessusFastMCPClient":
        await self._client.__aenter__()
        self._connected = True
        # The predecessor pings right after connecting and would stop here; the error is
        # kept for test_ping instead, so the other tests still report.
        try:
            self.ping_error = None if await self.ping() else "ping() returned False"
        except Exception as e:
            self.ping_error = f"{type(e).__name__}: {e}"
        return self

    async def __aexit__(self, *exc) -> None:
        self._connected = False
        await self._client.__aexit__(*exc)

    def is_connected(self) -> bool:
        return self._connected

    async def ping(self) -> bool:
        return await self._client.ping()

    async def list_tools(self) -> list[dict[str, Any]]:
        tools = await self._client.list_tools()
        return [{"name": t.name, "description": t.description, "inputSchema": t.inputSchema} for t in tools]

    async def call_tool(self, name: str, arguments: dict[str, Any], timeout: float | None = None) -> Any:
        result = await self._client.call_tool(name, arguments, timeout=timeout)
        return result.data

    async def submit_scan(self, targets: str, scan_name: str, description: str | None = None,
                          scan_type: str = "untrusted", idempotency_key: str | None = None,
                          timeout: float | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {"targets": targets, "name": scan_name}
        if description:
            args["description"] = description
        if idempotency_key:
            args["idempotency_key"] = idempotency_key
        return await self.call_tool(f"run_{scan_type}_scan", args, timeout=timeout)

    async def get_status(self, task_id: str) -> dict[str, Any]:
        return await self.call_tool("get_scan_status", {"task_id": task_id})

    async def get_results(self, task_id: str, schema_profile: str = "brief",
                          custom_fields: list[str] | None = None, filters: dict[str, Any] | None = None,
                          page: int = 1, page_size: int = 40) -> str:
        args: dict[str, Any] = {"task_id": task_id, "schema_profile": schema_profile,
                                "page": page, "page_size": page_size}
        if custom_fields is not None:
            args["custom_fields"] = custom_fields
        if filters is not None:
            args["filters"] = filters
        return await self.call_tool("get_scan_results", args)

    async def list_scanners(self) -> dict[str, Any]:
        return await self.call_tool("list_scanners", {})

    async def get_queue_status(self) -> dict[str, Any]:
        return await self.call_tool("get_queue_status", {})

    async def list_tasks(self, status: str | None = None, limit: int = 100) -> dict[str, Any]:
        args: dict[str, Any] = {"limit": limit}
        if status:
            args["status_filter"] = status
        return await self.call_tool("list_tasks", args)

    async def wait_for_completion(self, task_id: str, timeout: float = 600, poll_interval: float = 10,
                                  progress_callback=None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = await self.get_status(task_id)
            if progress_callback:
                progress_callback(status)
            if status["status"] in ("completed", "failed", "cancelled"):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"Task {task_id} did not complete within {timeout}s")
            await asyncio.sleep(poll_interval)

    async def scan_and_wait(self, targets: str, scan_name: str, **kw) -> dict[str, Any]:
        task = await self.submit_scan(targets, scan_name)
        return await self.wait_for_completion(task["task_id"], **kw)

    async def get_critical_vulnerabilities(self, task_id: str) -> list[dict[str, Any]]:
        text = await self.get_results(task_id, schema_profile="brief", filters={"severity": "4"}, page=0)
        return [v for v in map(json.loads, filter(str.strip, text.splitlines())) if v.get("type") == "vulnerability"]

    async def get_vulnerability_summary(self, task_id: str) -> dict[str, int]:
        text = await self.get_results(task_id, schema_profile="minimal", page=0)
        counts = {"1": 0, "2": 0, "3": 0, "4": 0}
        for line in filter(str.strip, text.splitlines()):
            v = json.loads(line)
            if v.get("type") == "vulnerability" and str(v.get("severity")) in counts:
                counts[str(v.get("severity"))] += 1
        return counts


def jsonnl(text: Any) -> list[dict[str, Any]]:
    assert isinstance(text, str), f"get_scan_results data is {type(text).__name__}, not the JSON-NL string"
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def check_dict(data: Any, what: str) -> dict[str, Any]:
    assert isinstance(data, dict), f"{what}: result.data is {type(data).__name__}, not a dict"
    return data


class Suite:
    def __init__(self, client: NessusFastMCPClient, targets: list[str]):
        self.c = client
        self.targets = targets

    async def test_ping(self):
        if self.c.ping_error is None:
            return
        # MCP 2026-07-28 removed ping: a server must answer it 404 + -32601 (conformance
        # sep-2575-http-server-method-not-found-404-ping). fastmcp 4.x negotiates
        # 2026-07-28 and still pings, so there (and only there) the refusal is right;
        # the predecessor's client pins fastmcp 2.x, whose 2025-11-25 ping must work.
        major = int(fastmcp.__version__.split(".")[0])
        assert major >= 4 and "ping" in self.c.ping_error, (
            f"ping after connect: {self.c.ping_error}"
        )
        print(f"  note: fastmcp {fastmcp.__version__} pings on 2026-07-28, which removed ping; "
              "refused as the spec requires")

    async def test_list_tools(self):
        names = {t["name"] for t in await self.c.list_tools()}
        assert PREDECESSOR_TOOLS <= names, f"missing {sorted(PREDECESSOR_TOOLS - names)}"

    async def test_submit_scan_returns_task(self):
        data = check_dict(await self.c.submit_scan(self.targets[0], "fastmcp submit"), "run_untrusted_scan")
        assert "error" not in data, data.get("error")
        assert data["task_id"] and data["status"] == "queued", data
        assert isinstance(data["queue_position"], int) and isinstance(data["estimated_wait_minutes"], int), data
        for key in ("trace_id", "scanner_pool", "scanner_instance", "scanner_url", "message"):
            assert key in data, f"no {key}"

    async def test_idempotent_resubmit(self):
        key = f"fm-idem-{time.time()}"
        a = check_dict(await self.c.submit_scan(self.targets[0], "idem", idempotency_key=key), "first submit")
        b = check_dict(await self.c.submit_scan(self.targets[0], "idem", idempotency_key=key), "second submit")
        assert a["task_id"] == b["task_id"] and b.get("idempotent") is True, (a, b)

    async def test_get_status(self):
        task = check_dict(await self.c.submit_scan(self.targets[0], "fastmcp status"), "submit")
        data = check_dict(await self.c.get_status(task["task_id"]), "get_scan_status")
        assert data["task_id"] == task["task_id"], data
        assert data["status"] in ("queued", "running", "completed"), data
        assert data["scan_type"] == "untrusted", data

    async def test_unknown_task_is_error_result(self):
        data = check_dict(await self.c.get_status("ne_scan_20250101_000000_deadbeef"), "get_scan_status")
        assert "error" in data and "not found" in data["error"], data

    async def test_invalid_scan_type_is_error_result(self):
        data = check_dict(await self.c.call_tool("run_authenticated_scan", {
            "targets": self.targets[0], "name": "bad", "scan_type": "invalid_type",
            "ssh_username": "u", "ssh_password": "p"}), "run_authenticated_scan")
        assert "error" in data and "Invalid scan_type" in data["error"], data

    async def test_target_outside_policy_is_error_result(self):
        data = check_dict(await self.c.submit_scan("8.8.8.8", "outside"), "run_untrusted_scan")
        assert "error" in data, data

    async def test_list_scanners(self):
        data = check_dict(await self.c.list_scanners(), "list_scanners")
        assert isinstance(data["scanners"], list) and data["total"] == len(data["scanners"]) >= 1, data
        assert isinstance(data["pools"], list), data

    async def test_list_pools(self):
        data = check_dict(await self.c.call_tool("list_pools", {}), "list_pools")
        assert isinstance(data["pools"], list) and data["default_pool"] in data["pools"], data

    async def test_get_pool_status(self):
        data = check_dict(await self.c.call_tool("get_pool_status", {}), "get_pool_status")
        assert data["available_capacity"] == data["total_capacity"] - data["total_active"], data
        assert data["total_scanners"] == len(data["scanners"]), data

    async def test_get_queue_status(self):
        data = check_dict(await self.c.get_queue_status(), "get_queue_status")
        assert isinstance(data["queue_depth"], int) and isinstance(data["dlq_size"], int), data

    async def test_list_tasks(self):
        data = check_dict(await self.c.list_tasks(limit=5), "list_tasks")
        assert isinstance(data["tasks"], list) and data["total"] == len(data["tasks"]), data

    async def test_results_before_completion_is_error(self):
        task = check_dict(await self.c.submit_scan(self.targets[0], "not yet"), "submit")
        text = await self.c.get_results(task["task_id"])
        assert isinstance(text, str), f"data is {type(text).__name__}"
        assert "error" in json.loads(text), text[:200]

    async def test_workflow_untrusted_scan(self):
        """E2E 1: submit -> wait -> brief results, critical findings, severity summary."""
        task = check_dict(await self.c.submit_scan(self.targets[0], "workflow 1"), "submit")
        final = await self.c.wait_for_completion(task["task_id"], timeout=120, poll_interval=1)
        assert final["status"] == "completed", final
        lines = jsonnl(await self.c.get_results(task["task_id"]))
        assert lines[0]["type"] == "schema" and lines[-1]["type"] == "pagination", lines[:1]
        crit = await self.c.get_critical_vulnerabilities(task["task_id"])
        assert all(v["severity"] == 4 for v in crit), crit[:1]
        summary = await self.c.get_vulnerability_summary(task["task_id"])
        assert summary["4"] == len(crit), (summary, len(crit))
        self.completed = task["task_id"]

    async def test_workflow_filters_and_fields(self):
        """E2E 2: submit -> wait -> filtered page, custom fields, page=0."""
        task = check_dict(await self.c.submit_scan(self.targets[-1], "workflow 2"), "submit")
        final = await self.c.wait_for_completion(task["task_id"], timeout=120, poll_interval=1)
        assert final["status"] == "completed", final
        assert isinstance(final.get("results_summary"), dict), final
        lines = jsonnl(await self.c.get_results(task["task_id"], filters={"severity": ">=3"}, page_size=10))
        vulns = [v for v in lines if v.get("type") == "vulnerability"]
        assert all(v["severity"] >= 3 for v in vulns), vulns[:1]
        lines = jsonnl(await self.c.get_results(
            task["task_id"], schema_profile="brief", custom_fields=None, page=0))
        assert lines[0]["type"] == "schema" and lines[-1]["type"] != "pagination", lines[-1]  # page=0: all, no pagination line
        custom = jsonnl(await self.c.call_tool("get_scan_results", {
            "task_id": task["task_id"], "custom_fields": ["host", "plugin_name", "severity"], "page": 1}))
        vulns = [v for v in custom if v.get("type") == "vulnerability"]
        assert all(set(v) <= {"type", "host", "plugin_name", "severity"} for v in vulns), vulns[:1]
        self.completed2 = task["task_id"]

    async def test_diff_scans_parses(self):
        """Not a predecessor tool: its schema must still parse in fastmcp (no bare `true`)."""
        a, b = getattr(self, "completed", None), getattr(self, "completed2", None)
        assert a and b, "needs both workflow tasks"
        result = await self.c._client.call_tool("diff_scans", {"base_task_id": a, "compare_task_id": b})
        assert result.data is not None, "result.data is None (fastmcp could not parse the structured content)"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--targets", required=True)
    args = ap.parse_args()
    targets = [t.strip() for t in args.targets.split(",") if "/" not in t]
    label = f"fastmcp {fastmcp.__version__}"
    passed, failed = [], []
    async with NessusFastMCPClient(args.url, token=args.token) as client:
        suite = Suite(client, targets)
        for name in [n for n in vars(Suite) if n.startswith("test_")]:
            try:
                await getattr(suite, name)()
                passed.append(name)
                print(f"  pass {name}")
            except Exception as e:  # one test's failure must not hide the others'
                msg = f"{type(e).__name__}: {e}".splitlines()[0][:300]
                failed.append((name, msg))
                print(f"  FAIL {name}: {msg}")
                if os.environ.get("INTEROP_DEBUG"):
                    traceback.print_exc()
    print(f"{label}: {len(passed)} of {len(passed) + len(failed)} tests pass")
    if failed:
        name, msg = failed[0]
        print(f"FAIL: {len(failed)} tests fail; first {name}: {msg}", file=sys.stderr)
        sys.exit(1)
    print(f"{label}: OK")


if __name__ == "__main__":
    asyncio.run(main())
