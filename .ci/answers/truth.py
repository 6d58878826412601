"""Ground truth for the answer-quality harness: a small ElementTree reader of `.nessus` XML.

Deliberately independent of nessus-schema and of the server: it reads the file with the
standard library's DOM and counts by hand, so a bug in the server's parser, store, filters
or aggregation shows up as a disagreement instead of being copied into the expected answer.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field

SEVERITY_NAMES = {4: "critical", 3: "high", 2: "medium", 1: "low", 0: "info"}


@dataclass
class Host:
    name: str
    ip: str | None = None
    fqdn: str | None = None
    netbios: str | None = None


@dataclass
class Finding:
    host: str
    plugin_id: int
    plugin_name: str
    plugin_family: str
    severity: int
    port: int
    protocol: str
    svc_name: str
    cves: list[str] = field(default_factory=list)
    exploit_available: bool = False
    cvss_base_score: float | None = None


@dataclass
class Scan:
    path: str
    hosts: list[Host]
    findings: list[Finding]

    # ----- small queries the truth functions use -----
    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def host_by_address(self, value: str) -> Host | None:
        v = value.strip().lower()
        for h in self.hosts:
            if v in {x.lower() for x in (h.name, h.ip, h.fqdn, h.netbios) if x}:
                return h
        return None

    def on(self, host: str) -> list[Finding]:
        return [f for f in self.findings if f.host == host]

    def where(self, pred) -> list[Finding]:
        return [f for f in self.findings if pred(f)]

    def severity_counts(self, findings: list[Finding] | None = None) -> dict[int, int]:
        c = Counter(f.severity for f in (self.findings if findings is None else findings))
        return {s: c.get(s, 0) for s in (4, 3, 2, 1, 0)}

    def max_severity(self) -> int | None:
        return max((f.severity for f in self.findings), default=None)

    def subset(self, pred) -> "Scan":
        """The findings matching `pred`, with the hosts that have any of them."""
        fs = self.where(pred)
        names = {f.host for f in fs}
        return Scan(self.path, [h for h in self.hosts if h.name in names], fs)

    def ranked_hosts(self) -> list[str]:
        """Hosts by risk: most critical, then high, medium, low, info, then most findings,
        then name."""
        def rank(h: Host):
            mine = self.on(h.name)
            c = self.severity_counts(mine)
            return tuple(-c[s] for s in (4, 3, 2, 1, 0)) + (-len(mine), h.name)
        return [h.name for h in sorted(self.hosts, key=rank)]

    def riskiest_host(self) -> str | None:
        return next(iter(self.ranked_hosts()), None)

    def plugin_hosts(self) -> dict[int, set[str]]:
        out: dict[int, set[str]] = defaultdict(set)
        for f in self.findings:
            out[f.plugin_id].add(f.host)
        return out

    def cve_findings(self) -> Counter:
        return Counter(c for f in self.findings for c in dict.fromkeys(f.cves))


def _text(el, tag: str) -> str | None:
    child = el.find(tag)
    return child.text if child is not None else None


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None


def read(path: str) -> Scan:
    root = ET.parse(path).getroot()
    hosts: list[Host] = []
    findings: list[Finding] = []
    for rh in root.iter("ReportHost"):
        name = rh.get("name", "")
        props = {t.get("name"): t.text for t in (rh.find("HostProperties") or [])}
        hosts.append(Host(name, props.get("host-ip"), props.get("host-fqdn"), props.get("netbios-name")))
        for it in rh.findall("ReportItem"):
            findings.append(Finding(
                host=name,
                plugin_id=int(it.get("pluginID", "0")),
                plugin_name=it.get("pluginName", ""),
                plugin_family=it.get("pluginFamily", ""),
                severity=int(it.get("severity", "0") or 0),
                port=int(it.get("port", "0") or 0),
                protocol=it.get("protocol", ""),
                svc_name=it.get("svc_name", ""),
                cves=[c.text.strip() for c in it.findall("cve") if c.text],
                exploit_available=(_text(it, "exploit_available") or "").strip() == "true",
                cvss_base_score=_float(_text(it, "cvss_base_score")),
            ))
    return Scan(path, hosts, findings)


def diff_counts(old: Scan, new: Scan, min_severity: int) -> dict[str, int]:
    """new / fixed / severity_changed / unchanged by (host, port, protocol, plugin id),
    occurrences of one key matched in file order; a finding counts when its severity is
    >= min_severity (a changed one when either side is)."""
    key = lambda f: (f.host, f.port, f.protocol, f.plugin_id)  # noqa: E731
    pool: dict[tuple, list[int]] = defaultdict(list)
    for f in old.findings:
        pool[key(f)].append(f.severity)
    counts = Counter()
    for f in new.findings:
        olds = pool.get(key(f))
        if olds:
            was = olds.pop(0)
            kind = "unchanged" if was == f.severity else "severity_changed"
        else:
            was, kind = f.severity, "new"
        if max(was, f.severity) >= min_severity:
            counts[kind] += 1
    for sevs in pool.values():
        counts["fixed"] += sum(1 for s in sevs if s >= min_severity)
    return {k: counts.get(k, 0) for k in ("new", "fixed", "severity_changed", "unchanged")}
