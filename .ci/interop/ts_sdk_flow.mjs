// The agent flow with the official TypeScript SDK (@modelcontextprotocol/sdk 1.x) over
// streamable HTTP: connect -> tools/list -> run_untrusted_scan -> poll get_scan_status ->
// get_scan_results filtered to severity >= 3 -> resources/list -> read nessus://schema/fields.
// The SDK validates structured results against each outputSchema with ajv; ajv's schema
// warnings (`unknown format "uint64" ignored in schema ...`) go to console.warn, so they
// are captured here and any of them fails the run (run.sh also greps stderr).
// Usage: node ts_sdk_flow.mjs URL TOKEN TARGETS
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, targets] = process.argv.slice(2);
const target = targets.split(",")[0].trim();
const schemaWarnings = [];
for (const level of ["warn", "error", "log"]) {
  const orig = console[level].bind(console);
  console[level] = (...args) => {
    const line = args.map(String).join(" ");
    if (/unknown format .* ignored in schema/.test(line)) schemaWarnings.push(line);
    orig(...args);
  };
}
const fail = (msg) => {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
};
const text = (r) => (r.content ?? []).map((c) => c.text ?? "").join("");
const structured = (name, r) => {
  if (r.isError) fail(`${name}: isError result: ${text(r).slice(0, 300)}`);
  const sc = r.structuredContent;
  if (sc === null || typeof sc !== "object") fail(`${name}: no structured content`);
  if ("error" in sc) fail(`${name}: business error: ${sc.error}`);
  return sc;
};

const client = new Client({ name: "nessus-interop-ts", version: "1.0.0" });
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
try {
  await client.connect(transport);
  console.log(`connected to ${client.getServerVersion()?.name}`);
  const { tools } = await client.listTools();
  console.log(`${tools.length} tools`);
  const sub = structured(
    "run_untrusted_scan",
    await client.callTool({ name: "run_untrusted_scan", arguments: { targets: target, name: "ts flow" } }),
  );
  const id = sub.task_id;
  console.log(`submitted ${id}`);
  const deadline = Date.now() + 120_000;
  let st;
  for (;;) {
    st = structured("get_scan_status", await client.callTool({ name: "get_scan_status", arguments: { task_id: id } }));
    if (["completed", "failed", "timeout", "cancelled"].includes(st.status)) break;
    if (Date.now() > deadline) fail(`scan still ${st.status} after 120 s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (st.status !== "completed") fail(`scan ended ${st.status}: ${st.error_message}`);
  const res = await client.callTool({
    name: "get_scan_results",
    arguments: { task_id: id, filters: { severity: ">=3" }, page_size: 10 },
  });
  if (res.isError) fail(`get_scan_results: ${text(res).slice(0, 300)}`);
  const lines = text(res).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  if (lines[0]?.type !== "schema" || lines.at(-1)?.type !== "pagination") fail("results are not schema ... pagination");
  const vulns = lines.filter((l) => l.type === "vulnerability");
  if (vulns.some((v) => (v.severity ?? 0) < 3)) fail("the severity filter let a lower severity through");
  console.log(`${vulns.length} findings with severity >= 3`);
  const { resources } = await client.listResources();
  if (!resources.some((r) => r.uri === "nessus://schema/fields")) fail("resources/list lacks nessus://schema/fields");
  const read = await client.readResource({ uri: "nessus://schema/fields" });
  JSON.parse(read.contents[0].text);
  console.log(`read nessus://schema/fields (${read.contents[0].text.length} chars)`);
} catch (e) {
  fail(e?.message ?? String(e));
} finally {
  await client.close().catch(() => {});
}
if (schemaWarnings.length > 0) {
  fail(`${schemaWarnings.length} schema warnings, first: ${schemaWarnings[0]}`);
}
console.log("typescript-sdk flow: OK");
