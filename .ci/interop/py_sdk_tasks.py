"""MCP Tasks (2026-07-28 `io.modelcontextprotocol/tasks`) with the official Python SDK.

`mcp` 2.3.0 ships no Tasks client; it exposes the extension hook instead
(`mcp.client.extension.ClientExtension` with a `ResultClaim` for `resultType: "task"`).
This is that hook, as an application would write it: advertise the extension, and
resolve a task handle by polling `tasks/get` until the task is terminal. `Client.call_tool`
then validates the final result against the tool's outputSchema, as for a direct result.

    --expect completed: run_untrusted_scan as a task -> handle -> tasks/update acknowledged
                        -> tasks/get polled -> completed, result valid for the outputSchema.
    --expect cancelled: a long scan as a task -> running -> tasks/cancel -> tasks/get cancelled.
Exits non-zero on the first failure, with one `FAIL:` line.
"""

import argparse
import asyncio
import os
import sys
import time
from typing import Any, Literal

import httpx2
from mcp import Client, MCPError
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, Request, RequestParams, Result
from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

TASKS = "io.modelcontextprotocol/tasks"
TERMINAL = ("completed", "failed", "cancelled")
CANCEL_PROMPT_S = 5.0  # a cancel must show in tasks/get within this (not at the next heartbeat)


PROBLEMS: list[str] = []


def fail(msg: str) -> None:
    print(f"FAIL: {msg}", file=sys.stderr)
    for p in PROBLEMS:
        print(f"FAIL (also): {p}", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(1)  # not sys.exit: inside the SDK's task groups that prints an exception group


def problem(msg: str) -> None:
    """A deviation that does not stop the flow: reported, and the script still fails."""
    print(f"problem: {msg}", file=sys.stderr)
    PROBLEMS.append(msg)


class TaskHandle(Result):
    """The `resultType: "task"` answer to a task-augmented tools/call."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)
    result_type: Literal["task"]
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    poll_interval_ms: int | None = None


class TaskState(Result):
    """A `tasks/get` answer: the task's fields, plus `result` once completed."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    poll_interval_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class Ack(Result):
    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)


class TaskIdParams(RequestParams):
    task_id: str


class UpdateParams(RequestParams):
    task_id: str
    input_responses: dict[str, Any]


class GetTask(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"


class CancelTask(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param = "taskId"


class UpdateTask(Request[UpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    name_param = "taskId"


async def tasks_get(session, task_id: str) -> TaskState:
    return await session.send_request(GetTask(params=TaskIdParams(task_id=task_id)), TaskState)


async def poll(session, handle: TaskHandle, until=TERMINAL, deadline_s=180.0) -> TaskState:
    deadline = time.monotonic() + deadline_s
    interval = min((handle.poll_interval_ms or 1000) / 1000.0, 1.0)
    while True:
        state = await tasks_get(session, handle.task_id)
        if state.task_id != handle.task_id:
            fail(f"tasks/get answered task {state.task_id} for {handle.task_id}")
        if state.created_at != handle.created_at and not any("createdAt" in p for p in PROBLEMS):
            problem(f"createdAt differs: handle {handle.created_at}, tasks/get {state.created_at}")
        if state.status in until:
            return state
        if time.monotonic() > deadline:
            fail(f"task still {state.status} after {deadline_s} s")
        await asyncio.sleep(interval)


class Tasks(ClientExtension):
    identifier = TASKS

    def __init__(self) -> None:
        self.seen: list[TaskHandle] = []

    def claims(self):
        return (ResultClaim(result_type="task", model=TaskHandle, resolve=self.resolve),)

    async def resolve(self, handle: TaskHandle, ctx: ClaimContext) -> CallToolResult:
        self.seen.append(handle)
        print(f"handle {handle.task_id}: {handle.status} ({handle.status_message})")
        if "get_scan_status" in (handle.status_message or ""):
            problem(f"the handle's status message gives tool-mode advice: {handle.status_message!r}")
        # tasks/update is part of the extension; with nothing outstanding it is an empty ack.
        try:
            await ctx.session.send_request(
                UpdateTask(params=UpdateParams(task_id=handle.task_id, input_responses={})), Ack)
            print("tasks/update acknowledged")
        except MCPError as e:
            problem(f"tasks/update answered error {e.code}: {e}")
        state = await poll(ctx.session, handle)
        if state.status != "completed" or state.result is None:
            fail(f"task ended {state.status}: {state.error or state.status_message}")
        return CallToolResult.model_validate(state.result, by_name=False)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--targets", required=True)
    ap.add_argument("--expect", choices=["completed", "cancelled"], required=True)
    args = ap.parse_args()
    target = args.targets.split(",")[0].strip()
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {args.token}"}, timeout=httpx2.Timeout(30, read=300))
    ext = Tasks()
    async with http, Client(streamable_http_client(args.url, http_client=http), extensions=[ext]) as client:
        print(f"connected, protocol {client.protocol_version}")
        caps = client.server_capabilities
        if TASKS not in ((caps.extensions or {}) if caps else {}):
            fail(f"the server does not advertise {TASKS}")
        await client.list_tools()
        call = {"targets": target, "name": f"py tasks {args.expect}"}
        if args.expect == "completed":
            t0 = time.monotonic()
            # Client.call_tool: claim resolved, then the final result is validated against
            # run_untrusted_scan's outputSchema (a RuntimeError names the first violation).
            try:
                result = await client.call_tool("run_untrusted_scan", call)
            except RuntimeError as e:
                fail(str(e).splitlines()[0])
            if not ext.seen:
                fail("run_untrusted_scan answered directly, not with a task handle")
            if result.is_error:
                fail(f"completed task carries an isError result: {result.content}")
            sc = result.structured_content or {}
            if sc.get("task_id") != ext.seen[0].task_id:
                fail(f"result task_id {sc.get('task_id')!r} is not the task's {ext.seen[0].task_id!r}")
            print(f"completed in {time.monotonic() - t0:.1f} s; result valid for the outputSchema")
        else:
            handle = await client.session.call_tool("run_untrusted_scan", call, allow_claimed=True)
            if not isinstance(handle, TaskHandle):
                fail(f"run_untrusted_scan answered {type(handle).__name__}, not a task handle")
            deadline = time.monotonic() + 60
            while True:  # cancel a scan running on the scanner (launched), not a queued one
                st = await client.call_tool("get_scan_status", {"task_id": handle.task_id})
                status = (st.structured_content or {}).get("status")
                if status == "running" and (st.structured_content or {}).get("nessus_scan_id") is not None:
                    break
                if status in ("completed", "failed", "timeout", "cancelled") or time.monotonic() > deadline:
                    fail(f"the scan never ran (status {status})")
                await asyncio.sleep(0.5)
            t0 = time.monotonic()
            await client.session.send_request(CancelTask(params=TaskIdParams(task_id=handle.task_id)), Ack)
            state = await poll(client.session, handle, deadline_s=60)
            secs = time.monotonic() - t0
            if state.status != "cancelled":
                fail(f"cancelled task ended {state.status}")
            if secs > CANCEL_PROMPT_S:
                problem(f"tasks/get said cancelled only {secs:.1f} s after tasks/cancel (limit {CANCEL_PROMPT_S} s)")
            print(f"cancelled: tasks/get says cancelled {secs:.1f} s after tasks/cancel")
    if PROBLEMS:
        first = PROBLEMS.pop(0)
        fail(first)
    print(f"python-sdk tasks {args.expect}: OK")


if __name__ == "__main__":
    asyncio.run(main())
