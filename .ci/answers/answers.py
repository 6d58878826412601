"""Answer-quality harness: analyst questions asked of a real nessus-mcp through the official
MCP Python SDK, each answer checked against ground truth from truth.py (ElementTree over the
same XML, never nessus-schema or the server).

Every question is one row of QUESTIONS: the question, the tool calls an agent would make from
the tool descriptions alone, an extractor that reads the answer out of those results, and a
truth function over the parsed XML. Per question it prints calls, result bytes, tokens
(characters / 4 of the text content items the model sees) and PASS/FAIL with the reason;
then median and max rows. Exits non-zero on any wrong answer, when the median exceeds
2 calls or 2,000 tokens, or when any question exceeds 4 calls or 8,000 tokens.

    python answers.py --url http://127.0.0.1:PORT/mcp --import-dir DIR --corpus DIR
        [--markdown FILE] [--only REGEX] [--existing-only]
The table is also written as Markdown to --markdown (default: $ANSWERS_MARKDOWN, if set).
--existing-only skips the questions that need the issue-14 tools and arguments
(summarize_results, severity names, host fields, closing-line notices).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

import truth
from truth import SEVERITY_NAMES

# Limits from issue 14's "done means".
MEDIAN_CALLS, MEDIAN_TOKENS = 2, 2000
MAX_CALLS, MAX_TOKENS = 4, 8000

# The scans, imported with import_scan under these aliases (file names in corpus/nessus).
SCANS = {
    "L3": "libnessus__nessus_report_local_3.nessus",      # 3 IP-named hosts, 106 findings
    "DD": "defectdojo__nessus_v_unknown.xml",             # 7 hostname-named hosts, no high/critical
    "MS2": "auvap__ms2_scan.nessus",                      # Metasploitable 2: CVEs, exploits, 11 critical
    "SMP": "eafonin-nessus-api__sample_scan.nessus",      # 1 host, 40 findings, 11 critical
    "TL": "libnessus__nessus_report_test_local.nessus",   # 2 hosts, one with an FQDN, huge plugin_output
    "PCI": "libnessus__nessus_report_localpci.nessus",    # the same host as HN, another export
    "HN": "libnessus__hostnessus.xml",
}


# ----------------------------------------------------------------------------- results
@dataclass
class Res:
    """One tool result as the model sees it."""
    tool: str
    args: dict
    text: str            # the text content items, joined
    structured: Any
    is_error: bool

    @property
    def lines(self) -> list[dict]:
        out = []
        for line in self.text.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        return out

    @property
    def vulns(self) -> list[dict]:
        return [v for v in self.lines if v.get("type") == "vulnerability"]

    @property
    def schema(self) -> dict:
        return next((v for v in self.lines if v.get("type") == "schema"), {})

    @property
    def closing(self) -> dict:
        lines = self.lines
        return lines[-1] if lines else {}

    @property
    def data(self) -> dict:
        """The structured result (or the text parsed as JSON)."""
        if isinstance(self.structured, dict):
            return self.structured
        try:
            v = json.loads(self.text)
            return v if isinstance(v, dict) else {}
        except json.JSONDecodeError:
            return {}

    @property
    def explanation(self) -> str:
        """Everything the answer says about itself: closing-line next/notices, an
        aggregation's explanation, an error and its hint."""
        c = self.closing
        d = self.data
        parts = [c.get("next") or "", *c.get("notices", [])] if c.get("type") != "vulnerability" else []
        parts += [d.get("explanation") or "", d.get("error") or "", d.get("hint") or ""]
        return " ".join(p for p in parts if isinstance(p, str))


def vulns(rs: list[Res]) -> list[dict]:
    return [v for r in rs for v in r.vulns]


def groups(r: Res) -> list[dict]:
    return r.data.get("groups", [])


def sev_counts_from_groups(r: Res) -> dict[int, int]:
    out = {s: 0 for s in (4, 3, 2, 1, 0)}
    for g in groups(r):
        out[int(g.get("severity", g["key"]))] = g["findings"]
    return out


# ----------------------------------------------------------------------------- questions
# A step is (tool, args) or a function of the results so far returning (tool, args) or None
# (no further call needed). "@ALIAS" in an argument is replaced by that scan's task id.
Step = tuple[str, dict] | Callable[[list[Res]], tuple[str, dict] | None]


@dataclass
class Q:
    id: str
    question: str
    calls: list[Step]
    extract: Callable[[list[Res]], Any]
    truth: Callable[[dict[str, truth.Scan]], Any]
    # check(got, expected, results) -> None when right, else why it is wrong.
    check: Callable[[Any, Any, list[Res]], str | None] | None = None
    # Needs the issue-14 tools/arguments (summarize_results, severity names, host fields,
    # notices); skipped by --existing-only.
    new: bool = True


def explains(*needles_fn):
    """A check for empty answers: the count must be 0 and the answer must say why, naming
    each of the truth's `mentions` (case-insensitive)."""
    def check(got, expected, rs):
        count, text = got
        if count != expected["count"]:
            return f"expected {expected['count']} findings, got {count}"
        missing = [m for m in expected["mentions"] if m.lower() not in text.lower()]
        if missing:
            return f"the answer does not explain itself: no {missing} in {text[:300]!r}"
        return None
    return check


def top_by(metric: str, n: int):
    """Compares a top-n answer by its metric values (ties may pick either key), checking
    every returned key's metric against the truth."""
    def check(got, expected, rs):
        want = sorted(expected.values(), reverse=True)[:n]
        if len(got) != min(n, len(expected)):
            return f"expected {min(n, len(expected))} entries, got {len(got)}: {got}"
        wrong = {k: v for k, v in got.items() if expected.get(k) != v}
        if wrong:
            return f"{metric} wrong for {wrong} (truth: { {k: expected.get(k) for k in wrong} })"
        if sorted(got.values(), reverse=True) != want:
            return f"not the top {n} by {metric}: got {sorted(got.values(), reverse=True)}, want {want}"
        return None
    return check


def G(task, group_by, **kw):
    """A summarize_results call."""
    return ("summarize_results", {"task_id": task, "group_by": group_by, **kw})


def R(task, **kw):
    """A get_scan_results call (minimal profile unless asked: what an agent picks to count)."""
    if "custom_fields" not in kw:
        kw.setdefault("schema_profile", "minimal")
    return ("get_scan_results", {"task_id": task, **kw})


def ports(fs):
    return {f"{f.port}/{f.protocol}" for f in fs if f.port}


QUESTIONS: list[Q] = [
    # --- host-centric
    Q("h1", "L3: which hosts have critical findings?",
      [G("@L3", "host", filters={"severity": "critical"})],
      lambda rs: {g["key"] for g in groups(rs[0])},
      lambda T: {f.host for f in T["L3"].findings if f.severity == 4}),
    Q("h2", "L3: what is on host 192.168.2.100, by severity?",
      [G("@L3", "severity", filters={"host": "192.168.2.100"})],
      lambda rs: sev_counts_from_groups(rs[0]),
      lambda T: T["L3"].severity_counts(T["L3"].on("192.168.2.100"))),
    Q("h3", "L3: how many findings does 192.168.2.10 have? (no such host; .100/.101/.104 exist)",
      [R("@L3", filters={"host": "192.168.2.10"})],
      lambda rs: (len(vulns(rs)), rs[0].explanation),
      lambda T: {"count": 0, "mentions": ["192.168.2.100"]},
      explains()),
    Q("h4", "DD: how many findings are on 10.31.112.23 (a host named by its host name)?",
      [G("@DD", "host", filters={"host": "10.31.112.23"})],
      lambda rs: {g["key"]: g["findings"] for g in groups(rs[0])},
      lambda T: {T["DD"].host_by_address("10.31.112.23").name:
                 len(T["DD"].on(T["DD"].host_by_address("10.31.112.23").name))}),
    Q("h5", "DD: which host is 10.31.112.25 and what is its NetBIOS name?",
      [R("@DD", filters={"host": "10.31.112.25"}, custom_fields=["host", "host_ip", "netbios_name"],
         page_size=10)],
      lambda rs: {(v.get("host"), v.get("host_ip"), v.get("netbios_name")) for v in vulns(rs)},
      lambda T: {(h.name, h.ip, h.netbios) for h in [T["DD"].host_by_address("10.31.112.25")]}),
    Q("h6", "TL: which host is conserve.local, and how many findings does it have?",
      [G("@TL", "host", filters={"host": "conserve.local"})],
      lambda rs: {g["key"]: g["findings"] for g in groups(rs[0])},
      lambda T: {h.name: len(T["TL"].on(h.name)) for h in [T["TL"].host_by_address("conserve.local")]}),
    Q("h7", "TL: medium-or-worse plugin ids on 192.168.1.3",
      [R("@TL", filters={"host": "192.168.1.3", "severity": ">=2"}, page_size=100)],
      lambda rs: sorted(v["plugin_id"] for v in vulns(rs)),
      lambda T: sorted(f.plugin_id for f in T["TL"].on("192.168.1.3") if f.severity >= 2),
      new=False),
    Q("h8", "TL: which hosts have a medium or worse finding?",
      [G("@TL", "host", filters={"severity": ">=medium"})],
      lambda rs: {g["key"] for g in groups(rs[0])},
      lambda T: {f.host for f in T["TL"].findings if f.severity >= 2}),
    # --- plugin-centric
    Q("p1", "DD: which hosts have plugin 24260?",
      [R("@DD", filters={"plugin_id": 24260}, custom_fields=["host", "plugin_id"], page_size=100)],
      lambda rs: {v["host"] for v in vulns(rs)},
      lambda T: T["DD"].plugin_hosts()[24260],
      new=False),
    Q("p2", "DD: top 5 plugins by affected hosts",
      [G("@DD", "plugin", rank_by="hosts", top=5)],
      lambda rs: {g["key"]: g["hosts"] for g in groups(rs[0])},
      lambda T: {str(p): len(h) for p, h in T["DD"].plugin_hosts().items()},
      top_by("hosts", 5)),
    Q("p3", "L3: which hosts have plugin 19506 (Nessus Scan Information)?",
      [G("@L3", "host", filters={"plugin_id": 19506})],
      lambda rs: {g["key"] for g in groups(rs[0])},
      lambda T: T["L3"].plugin_hosts()[19506]),
    # --- CVE lookup
    Q("c1", "MS2: is CVE-2008-0166 present, and where (host, port, plugin)?",
      [R("@MS2", filters={"cve": "CVE-2008-0166"}, page_size=100)],
      lambda rs: sorted((v["host"], v["port"], v["plugin_id"]) for v in vulns(rs)),
      lambda T: sorted((f.host, f.port, f.plugin_id) for f in T["MS2"].findings if "CVE-2008-0166" in f.cves)),
    Q("c2", "SMP: is CVE-2021-44790 present, and in how many findings?",
      [R("@SMP", filters={"cve": "CVE-2021-44790"}, page_size=100)],
      lambda rs: len(vulns(rs)),
      lambda T: T["SMP"].cve_findings()["CVE-2021-44790"],
      new=False),
    Q("c3", "SMP: is CVE-2014-0160 (Heartbleed) present? (it is not)",
      [R("@SMP", filters={"cve": "CVE-2014-0160"})],
      lambda rs: (len(vulns(rs)), rs[0].explanation),
      # What the scan does hold: 40 findings, the highest critical.
      lambda T: {"count": 0, "mentions": [str(len(T["SMP"].findings)),
                                          SEVERITY_NAMES[T["SMP"].max_severity()]]},
      explains()),
    Q("c4", "MS2: top 5 CVEs by findings",
      [G("@MS2", "cve", rank_by="count", top=5)],
      lambda rs: {g["key"]: g["findings"] for g in groups(rs[0])},
      lambda T: dict(T["MS2"].cve_findings()),
      top_by("findings", 5)),
    Q("c5", "DD: which hosts are affected by CVE-2005-1794?",
      [R("@DD", filters={"cve": "CVE-2005-1794"}, custom_fields=["host", "cve"], page_size=100)],
      lambda rs: {v["host"] for v in vulns(rs)},
      lambda T: {f.host for f in T["DD"].findings if "CVE-2005-1794" in f.cves},
      new=False),
    # --- exploitability
    Q("e1", "MS2: critical or high findings with a known exploit (plugin, port)",
      [R("@MS2", filters={"severity": ">=high", "exploit_available": True}, page_size=100)],
      lambda rs: sorted((v["plugin_id"], v["port"]) for v in vulns(rs)),
      lambda T: sorted((f.plugin_id, f.port) for f in T["MS2"].findings
                       if f.severity >= 3 and f.exploit_available)),
    Q("e2", "SMP: how many severity >= 3 findings have a known exploit?",
      [R("@SMP", filters={"severity": ">=3", "exploit_available": True}, page_size=100)],
      lambda rs: len(vulns(rs)),
      lambda T: len(T["SMP"].where(lambda f: f.severity >= 3 and f.exploit_available)),
      new=False),
    Q("e3", "L3: hosts ranked by medium-or-worse findings with a known exploit",
      [G("@L3", "host", filters={"severity": ">=medium", "exploit_available": True})],
      lambda rs: [g["key"] for g in groups(rs[0])],
      lambda T: T["L3"].subset(lambda f: f.severity >= 2 and f.exploit_available).ranked_hosts()),
    # --- riskiest host, severity counts, totals
    Q("r1", "DD: which host is the riskiest?",
      [G("@DD", "host", top=1)],
      lambda rs: groups(rs[0])[0]["key"] if groups(rs[0]) else None,
      lambda T: T["DD"].riskiest_host()),
    Q("r2", "L3: which host is the riskiest?",
      [G("@L3", "host", top=1)],
      lambda rs: groups(rs[0])[0]["key"] if groups(rs[0]) else None,
      lambda T: T["L3"].riskiest_host()),
    Q("s1", "MS2: how many findings per severity?",
      [("get_scan_status", {"task_id": "@MS2"})],
      lambda rs: {s: rs[0].data["results_summary"]["severity_breakdown"][SEVERITY_NAMES[s]]
                  for s in (4, 3, 2, 1, 0)},
      lambda T: T["MS2"].severity_counts(),
      new=False),
    Q("s2", "TL: how many findings per severity?",
      [G("@TL", "severity")],
      lambda rs: sev_counts_from_groups(rs[0]),
      lambda T: T["TL"].severity_counts()),
    Q("s3", "SMP: how many findings in all, info included?",
      [("get_scan_status", {"task_id": "@SMP"})],
      lambda rs: rs[0].data["results_summary"]["total_findings"],
      lambda T: len(T["SMP"].findings),
      new=False),
    Q("s4", "SMP: how many critical findings?",
      [R("@SMP", filters={"severity": 4}, page_size=100)],
      lambda rs: rs[0].schema.get("total_vulnerabilities"),
      lambda T: T["SMP"].severity_counts()[4],
      new=False),
    Q("s5", "SMP: which plugins are critical? (severity by name)",
      [R("@SMP", filters={"severity": "critical"}, page_size=100)],
      lambda rs: sorted(v["plugin_id"] for v in vulns(rs)),
      lambda T: sorted(f.plugin_id for f in T["SMP"].findings if f.severity == 4)),
    Q("s6", "MS2: how many findings have a CVSS v2 base score above 9?",
      [R("@MS2", filters={"cvss_base_score": ">9"}, page_size=100)],
      lambda rs: rs[0].schema.get("total_vulnerabilities"),
      lambda T: len(T["MS2"].where(lambda f: (f.cvss_base_score or 0) > 9)),
      new=False),
    # --- open ports
    Q("o1", "MS2: which ports are open?",
      [G("@MS2", "port", top=100)],
      lambda rs: {g["key"] for g in groups(rs[0]) if not g["key"].startswith("0/")},
      lambda T: ports(T["MS2"].findings)),
    # --- empty answers explain themselves
    Q("x1", "DD: any critical findings? (none: highest is medium)",
      [R("@DD", filters={"severity": "critical"})],
      lambda rs: (len(vulns(rs)), rs[0].explanation),
      lambda T: {"count": 0, "mentions": [SEVERITY_NAMES[T["DD"].max_severity()]]},
      explains()),
    Q("x2", "DD: hosts with critical findings with an exploit (none)",
      [G("@DD", "host", filters={"severity": "critical", "exploit_available": True})],
      lambda rs: (len(groups(rs[0])), rs[0].explanation),
      lambda T: {"count": 0, "mentions": [SEVERITY_NAMES[T["DD"].max_severity()],
                                          str(sum(f.exploit_available for f in T["DD"].findings))]},
      explains()),
    # --- paging
    Q("g1", "L3: page 99 of 50 findings (past the end)",
      [R("@L3", page=99, page_size=50)],
      lambda rs: (len(vulns(rs)), rs[0].explanation),
      lambda T: {"count": 0, "mentions": ["past the end",
                                          f"{math.ceil(len(T['L3'].findings) / 50)} pages"]},
      explains()),
    Q("g2", "DD: every medium finding (host, plugin), following the cursor",
      [R("@DD", filters={"severity": 2}, page_size=20),
       lambda rs: (R("@DD", cursor=rs[-1].closing["next_cursor"], filters={"severity": 2}, page_size=20)
                   if rs[-1].closing.get("next_cursor") else None)],
      lambda rs: sorted((v["host"], v["plugin_id"]) for v in vulns(rs)),
      lambda T: sorted((f.host, f.plugin_id) for f in T["DD"].findings if f.severity == 2),
      new=False),
    # --- diffs
    Q("d1", "PCI vs HN (the same host, two exports): what changed?",
      [("diff_scans", {"base_task_id": "@PCI", "compare_task_id": "@HN", "min_severity": 0})],
      lambda rs: {k: rs[0].data["counts"][k] for k in ("new", "fixed", "severity_changed", "unchanged")},
      lambda T: truth.diff_counts(T["PCI"], T["HN"], 0),
      new=False),
    Q("d2", "L3 -> TL: new and fixed high-or-critical findings",
      [("diff_scans", {"base_task_id": "@L3", "compare_task_id": "@TL", "min_severity": 3})],
      lambda rs: {k: rs[0].data["counts"][k] for k in ("new", "fixed", "severity_changed", "unchanged")},
      lambda T: truth.diff_counts(T["L3"], T["TL"], 3),
      new=False),
]


# ----------------------------------------------------------------------------- running
def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def subst(v, tasks):
    if isinstance(v, str) and v.startswith("@") and v[1:] in tasks:
        return tasks[v[1:]]
    if isinstance(v, dict):
        return {k: subst(x, tasks) for k, x in v.items()}
    if isinstance(v, list):
        return [subst(x, tasks) for x in v]
    return v


async def call(client: Client, tool: str, args: dict, **kw) -> Res:
    r = await client.call_tool(tool, args, **kw)
    text = "".join(getattr(c, "text", "") or "" for c in r.content if getattr(c, "type", "") == "text")
    return Res(tool, args, text, r.structured_content, bool(r.is_error))


@dataclass
class Row:
    q: Q
    calls: int = 0
    bytes: int = 0
    tokens: int = 0
    ok: bool = False
    why: str = ""
    trace: list[str] = field(default_factory=list)


async def ask(client: Client, q: Q, tasks: dict, T: dict) -> Row:
    row = Row(q)
    rs: list[Res] = []
    try:
        for step in q.calls:
            st = step(rs) if callable(step) else step
            if st is None:
                break
            tool, args = st[0], subst(st[1], tasks)
            row.calls += 1
            row.trace.append(f"{tool} {json.dumps(st[1], separators=(',', ':'))}")
            r = await call(client, tool, args)
            rs.append(r)
            row.bytes += len(r.text.encode())
            row.tokens += tokens(r.text)
            # A refused call is a wrong answer, whatever the question: say what it said.
            if r.is_error:
                raise AssertionError(f"{tool} answered isError: {r.text[:300]}")
            if r.data.get("error"):
                raise AssertionError(f"{tool}: {r.data.get('error')} ({r.data.get('hint')})")
            if tool == "get_scan_results" and not r.schema:
                raise AssertionError(f"{tool}: not a JSON-NL answer: {r.text[:300]}")
        got = q.extract(rs)
        expected = q.truth(T)
        why = q.check(got, expected, rs) if q.check else (
            None if got == expected else f"expected {short(expected)}, got {short(got)}")
        row.ok, row.why = why is None, why or "matches the XML"
    except Exception as e:  # noqa: BLE001 - every failure is a row, the run goes on
        row.ok, row.why = False, f"{type(e).__name__}: {e}"[:400]
    if row.calls > MAX_CALLS:
        row.ok, row.why = False, f"{row.calls} calls > {MAX_CALLS}; " + row.why
    if row.tokens > MAX_TOKENS:
        row.ok, row.why = False, f"{row.tokens} tokens > {MAX_TOKENS}; " + row.why
    return row


def short(v) -> str:
    s = json.dumps(v, default=sorted) if not isinstance(v, str) else repr(v)
    return s if len(s) <= 240 else s[:240] + "..."


async def import_all(client: Client, import_dir: str, corpus: str) -> tuple[dict, dict]:
    tasks, progress = {}, {}
    for alias, name in SCANS.items():
        shutil.copy(os.path.join(corpus, name), os.path.join(import_dir, name))
        seen: list[tuple[float, float | None]] = []

        async def on_progress(p: float, total: float | None, message: str | None, seen=seen):
            seen.append((p, total))
        r = await call(client, "import_scan", {"path": name, "name": alias},
                       progress_callback=on_progress)
        d = r.data
        if r.is_error or d.get("status") != "completed":
            raise SystemExit(f"FAIL: import_scan {name}: {r.text[:400]}")
        tasks[alias] = d["task_id"]
        size = os.path.getsize(os.path.join(corpus, name))
        bad = [s for s in seen if s[1] not in (None, float(size)) or s[0] > size]
        if bad:
            raise SystemExit(f"FAIL: import_scan {name}: progress {bad[:3]} does not fit a {size}-byte file")
        progress[alias] = len(seen)
    return tasks, progress


def check_truth_against_manifest(T: dict, manifest: str) -> list[str]:
    """The truth reader itself is checked by a second route: the host, finding and
    severity counts recorded by hand in corpus/MANIFEST.md."""
    rows = {}
    for line in open(manifest, encoding="utf-8"):
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 8 and cells[2] in SCANS.values():
            rows[cells[2]] = (int(cells[5]), int(cells[6]), cells[8])
    problems = []
    for alias, name in SCANS.items():
        if name not in rows:
            problems.append(f"{name} is not in {manifest}")
            continue
        hosts, items, sev = rows[name]
        scan = T[alias]
        mine = "{" + ",".join(f"{s}:{n}" for s, n in sorted(scan.severity_counts().items()) if n) + "}"
        if (len(scan.hosts), len(scan.findings), mine) != (hosts, items, sev):
            problems.append(f"{name}: truth.py reads {len(scan.hosts)} hosts, {len(scan.findings)} "
                            f"findings, {mine}; the MANIFEST says {hosts}, {items}, {sev}")
    return problems


def table(rows: list[Row]) -> tuple[list[str], str]:
    head = ["id", "question", "calls", "bytes", "tokens", "result"]
    body = [[r.q.id, r.q.question, str(r.calls), str(r.bytes), str(r.tokens),
             ("PASS" if r.ok else "FAIL") + ": " + r.why] for r in rows]
    med = ["median", "", f"{statistics.median(r.calls for r in rows):g}",
           f"{statistics.median(r.bytes for r in rows):g}", f"{statistics.median(r.tokens for r in rows):g}", ""]
    mx = ["max", "", str(max(r.calls for r in rows)), str(max(r.bytes for r in rows)),
          str(max(r.tokens for r in rows)), ""]
    text = [f"{b[0]:<7} {b[2]:>5} {b[3]:>7} {b[4]:>6}  {b[5][:160]}\n        {b[1]}" for b in body]
    text += [f"{m[0]:<7} {m[2]:>5} {m[3]:>7} {m[4]:>6}" for m in (med, mx)]
    esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(esc(c) for c in b) + " |" for b in body]
    md += ["| " + " | ".join(f"**{c}**" if c else "" for c in m) + " |" for m in (med, mx)]
    return text, "\n".join(md) + "\n"


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", default="")
    ap.add_argument("--import-dir", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--markdown", default=os.environ.get("ANSWERS_MARKDOWN", ""))
    ap.add_argument("--only", default="", help="regex over question ids")
    ap.add_argument("--existing-only", action="store_true",
                    help="skip the questions that need the issue-14 tools and arguments")
    args = ap.parse_args()

    T = {alias: truth.read(os.path.join(args.corpus, name)) for alias, name in SCANS.items()}
    manifest = os.path.join(os.path.dirname(os.path.abspath(args.corpus)), "MANIFEST.md")
    problems = check_truth_against_manifest(T, manifest)
    if problems:
        print("FAIL: the ground-truth reader disagrees with the corpus MANIFEST:\n  " + "\n  ".join(problems))
        return 1
    print(f"ground truth: {len(T)} scans read with ElementTree; host/finding/severity counts match {manifest}")
    qs = [q for q in QUESTIONS if re.search(args.only, q.id) and not (args.existing_only and q.new)]
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300))
    async with http, Client(streamable_http_client(args.url, http_client=http)) as client:
        t0 = time.monotonic()
        tasks, progress = await import_all(client, args.import_dir, args.corpus)
        print(f"imported {len(tasks)} scans in {time.monotonic() - t0:.1f} s; "
              f"progress notifications per import: {progress}")
        rows = [await ask(client, q, tasks, T) for q in qs]

    text, md = table(rows)
    print("\n".join(text))
    for r in rows:
        if not r.ok:
            print(f"FAIL: {r.q.id} {r.q.question}: {r.why}\n      calls: " + " ; ".join(r.trace))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
        print(f"table written to {args.markdown}")
    status = 0
    if not all(r.ok for r in rows):
        print(f"FAIL: {sum(not r.ok for r in rows)} of {len(rows)} answers wrong or over the limits")
        status = 1
    med_calls = statistics.median(r.calls for r in rows)
    med_tokens = statistics.median(r.tokens for r in rows)
    if med_calls > MEDIAN_CALLS or med_tokens > MEDIAN_TOKENS:
        print(f"FAIL: median {med_calls:g} calls / {med_tokens:g} tokens "
              f"(limits {MEDIAN_CALLS} / {MEDIAN_TOKENS})")
        status = 1
    if status == 0:
        print(f"answers: all {len(rows)} right; median {med_calls:g} calls, {med_tokens:g} tokens")
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
