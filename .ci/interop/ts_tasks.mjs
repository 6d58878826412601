// MCP Tasks with the TypeScript client 2.x (@modelcontextprotocol/client) and
// @modelcontextprotocol/ext-tasks, over the 2026-07-28 wire.
// ext-tasks needs a raw request path for task traffic on a 2026-07-28 server (the SDK's
// codecs reject `resultType: "task"`); `rawDispatch` below is that path: one POST per
// JSON-RPC request with the bearer token and the 2026-07-28 routing headers.
//   completed: run_untrusted_scan as a task -> settle() -> completed; the result must
//              validate against run_untrusted_scan's outputSchema (ajv, as the SDK would).
//   cancelled: a long scan as a task -> running -> execution.cancel() -> cancelled.
// Usage: node ts_tasks.mjs URL TOKEN TARGETS completed|cancelled
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { createTaskSessionFromClient } from "@modelcontextprotocol/ext-tasks/client";
import Ajv2020 from "ajv/dist/2020.js";

const [url, token, targets, expect] = process.argv.slice(2);
const target = targets.split(",")[0].trim();
const PV = "2026-07-28";
const TASKS = "io.modelcontextprotocol/tasks";
const CANCEL_PROMPT_S = 5; // a cancel must show in tasks/get within this
const clientInfo = { name: "nessus-interop-ts-tasks", version: "1.0.0" };
const clientCapabilities = { extensions: { [TASKS]: {} } };
const fail = (msg) => {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
};

let nextId = 1;
async function rawDispatch(request, options) {
  const body = { jsonrpc: "2.0", id: `raw-${nextId++}`, ...request };
  const headers = {
    Authorization: `Bearer ${token}`,
    "Content-Type": "application/json",
    Accept: "application/json, text/event-stream",
    "MCP-Protocol-Version": PV,
    "Mcp-Method": body.method,
  };
  const name = body.params?.name ?? body.params?.taskId;
  if (typeof name === "string") headers["Mcp-Name"] = name;
  const resp = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), signal: options?.signal });
  const raw = await resp.text();
  let messages;
  if ((resp.headers.get("content-type") ?? "").includes("text/event-stream")) {
    messages = raw
      .split(/\r?\n/)
      .filter((l) => l.startsWith("data:"))
      .map((l) => l.slice(5).trim())
      .filter((l) => l)
      .map((l) => JSON.parse(l));
  } else {
    messages = raw.trim() ? [JSON.parse(raw)] : [];
  }
  const msg = messages.find((m) => m.id === body.id);
  if (!msg) throw new Error(`HTTP ${resp.status} for ${body.method}, no JSON-RPC answer: ${raw.slice(0, 200)}`);
  return msg.error ? { kind: "error", error: msg.error } : { kind: "result", result: msg.result };
}

const client = new Client(clientInfo, { capabilities: clientCapabilities, versionNegotiation: { mode: { pin: PV } } });
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
let session;
try {
  await client.connect(transport);
  console.log(`connected, era ${client.getProtocolEra?.()}`);
  const { tools } = await client.listTools();
  const tool = tools.find((t) => t.name === "run_untrusted_scan");
  if (!tool?.outputSchema) fail("run_untrusted_scan has no outputSchema");
  session = createTaskSessionFromClient(client, {
    endpointId: "nessus-interop",
    rawDispatch,
    v2RequestFraming: { protocolVersion: PV, clientInfo, clientCapabilities },
  });
  const t0 = Date.now();
  const execution = await session.callTool(
    "run_untrusted_scan",
    { targets: target, name: `ts tasks ${expect}` },
    { task: { preference: "require" } },
  );
  if (execution.kind !== "task") fail(`run_untrusted_scan ran as ${execution.kind}, not as a task`);
  const taskId = execution.handle.taskId;
  console.log(`task ${taskId}`);
  if (expect === "completed") {
    const { outcome } = await execution.settle();
    if (outcome.status !== "completed") fail(`task ended ${outcome.status}: ${outcome.error?.message ?? ""}`);
    const result = outcome.result;
    if (result.isError) fail(`completed task carries an isError result: ${JSON.stringify(result.content)}`);
    const validate = new Ajv2020({ strict: false, allErrors: true, logger: false }).compile(tool.outputSchema);
    if (!validate(result.structuredContent)) {
      const e = validate.errors[0];
      fail(`result does not match run_untrusted_scan's outputSchema: ${e.instancePath || "/"} ${e.message}`);
    }
    if (result.structuredContent.task_id !== taskId) fail(`result task_id ${result.structuredContent.task_id} is not ${taskId}`);
    console.log(`completed in ${((Date.now() - t0) / 1000).toFixed(1)} s; result valid for the outputSchema`);
  } else {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const st = await client.callTool({ name: "get_scan_status", arguments: { task_id: taskId } });
      const status = st.structuredContent?.status;
      // Cancel a scan running on the scanner (launched), not a queued or just-claimed one.
      if (status === "running" && st.structuredContent?.nessus_scan_id != null) break;
      if (["completed", "failed", "timeout", "cancelled"].includes(status) || Date.now() > deadline) {
        fail(`the scan never ran (status ${status})`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const t1 = Date.now();
    await execution.cancel();
    const { outcome } = await execution.settle();
    if (outcome.status !== "cancelled") fail(`cancelled task ended ${outcome.status}`);
    // The server's own view: tasks/get must say cancelled too, promptly (not at the
    // worker's next heartbeat).
    const meta = {
      "io.modelcontextprotocol/protocolVersion": PV,
      "io.modelcontextprotocol/clientInfo": clientInfo,
      "io.modelcontextprotocol/clientCapabilities": clientCapabilities,
    };
    let got;
    for (;;) {
      got = await rawDispatch({ method: "tasks/get", params: { taskId, _meta: meta } });
      if (got.kind !== "result") fail(`tasks/get after cancel: ${JSON.stringify(got)}`);
      if (got.result.status === "cancelled" || Date.now() - t1 > 60_000) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const secs = (Date.now() - t1) / 1000;
    if (got.result.status !== "cancelled") fail(`tasks/get still says ${got.result.status} 60 s after the cancel`);
    if (secs > CANCEL_PROMPT_S) fail(`tasks/get said cancelled only ${secs.toFixed(1)} s after the cancel (limit ${CANCEL_PROMPT_S} s)`);
    console.log(`cancelled ${((Date.now() - t1) / 1000).toFixed(1)} s after the cancel request`);
  }
} catch (e) {
  fail(`${e?.constructor?.name ?? "Error"}: ${e?.message ?? String(e)}`);
} finally {
  await session?.close().catch(() => {});
  await client.close().catch(() => {});
}
console.log(`typescript ext-tasks ${expect}: OK`);
