#!/usr/bin/env python3
"""Reference implementation of the predecessor's results pipeline (.nessus -> JSON-NL).

This reproduces, for benchmarking, exactly what the Python predecessor did on every
`get_scan_results` call (seed-spec section 9), quirks included:

* the whole file is read into memory and parsed with `xml.etree.ElementTree.fromstring`;
* one dict is built per ReportItem: attributes as strings, `cve` as a list, three float
  fields, `exploit_available` as a bool, every other child as text (last one wins);
* the record is projected to the profile BEFORE filtering, so a filter on a field outside
  the profile removes everything;
* filters use substring matching on strings, so {"severity": ">=3"} matches nothing;
* the page is sliced and every line is `json.dumps` with Python's default separators, the
  lines joined with "\\n" and no trailing newline.

Standard library only. Usage:

    predecessor_pipeline.py FILE [--profile brief] [--custom-fields a,b]
                            [--filters JSON] [--page 1] [--page-size 40] [--stats]

With --stats, a JSON object {"seconds", "cpu_seconds", "peak_rss_kib", "vulnerabilities"}
is printed on stderr; "seconds" covers reading, parsing, converting and writing;
"cpu_seconds" is the process's user + system time (including interpreter start-up).
"""

import argparse
import json
import math
import resource
import sys
import time
import xml.etree.ElementTree as ET

MINIMAL = ["host", "plugin_id", "severity", "cve", "cvss_score", "exploit_available"]
SUMMARY = MINIMAL + ["plugin_name", "cvss3_base_score", "synopsis"]
BRIEF = SUMMARY + ["description", "solution"]
PROFILES = {"minimal": MINIMAL, "summary": SUMMARY, "brief": BRIEF, "full": None}
FLOAT_FIELDS = {"cvss_base_score", "cvss3_base_score", "cvss_score"}
ATTRIBUTES = [
    ("plugin_id", "pluginID"),
    ("plugin_name", "pluginName"),
    ("plugin_family", "pluginFamily"),
    ("severity", "severity"),
    ("port", "port"),
    ("svc_name", "svc_name"),
    ("protocol", "protocol"),
]


def parse(data):
    """Whole-document DOM parse, as parse_nessus_file did."""
    root = ET.fromstring(data)
    report = root.find(".//Report")
    scan_name = report.get("name", "Unknown") if report is not None else "Unknown"
    vulnerabilities = []
    for host in root.findall(".//ReportHost"):
        host_name = host.get("name")
        for item in host.findall("ReportItem"):
            record = {"type": "vulnerability", "host": host_name}
            for key, attribute in ATTRIBUTES:
                record[key] = item.get(attribute)
            for child in item:
                tag = child.tag
                text = child.text or ""
                if tag == "cve":
                    record.setdefault("cve", []).append(text)
                elif tag in FLOAT_FIELDS:
                    if text:
                        try:
                            record[tag] = float(text)
                        except ValueError:
                            record[tag] = text
                    else:
                        record[tag] = None
                elif tag == "exploit_available":
                    record[tag] = text.lower() == "true"
                else:
                    record[tag] = text
            vulnerabilities.append(record)
    return scan_name, vulnerabilities


def resolve_fields(profile, custom_fields):
    if profile != "brief" and custom_fields is not None:
        raise ValueError("Cannot specify both schema_profile and custom_fields")
    if custom_fields:
        return "custom", list(custom_fields)
    if profile not in PROFILES:
        raise ValueError(
            f"Invalid schema profile: {profile}. Must be one of: {list(PROFILES)}"
        )
    return profile, PROFILES[profile]


def project(record, fields):
    if fields is None:
        return record
    projected = {"type": record["type"]}
    for field in fields:
        if field in record:
            projected[field] = record[field]
    return projected


def matches(record, filters):
    for field, expected in filters.items():
        if field not in record:
            return False
        value = record[field]
        if isinstance(value, str) and isinstance(expected, str):
            if expected.lower() not in value.lower():
                return False
        elif isinstance(expected, str) and expected[:1] in ("<", ">", "="):
            if not compare(value, expected):
                return False
        elif isinstance(expected, bool):
            if bool(value) != expected:
                return False
        elif isinstance(value, list):
            needle = str(expected).lower()
            if not any(needle in str(item).lower() for item in value):
                return False
        elif value != expected:
            return False
    return True


def compare(value, expected):
    if value is None or isinstance(value, list):
        return False
    for operator in (">=", "<=", ">", "<", "="):
        if expected.startswith(operator):
            try:
                operand = float(expected[len(operator):])
                number = float(value)
            except (TypeError, ValueError):
                return False
            return {
                ">=": number >= operand,
                "<=": number <= operand,
                ">": number > operand,
                "<": number < operand,
                "=": number == operand,
            }[operator]
    return False


def convert(data, profile, custom_fields, filters, page, page_size):
    profile_name, fields = resolve_fields(profile, custom_fields)
    scan_name, vulnerabilities = parse(data)
    projected = [project(v, fields) for v in vulnerabilities]
    filtered = [v for v in projected if matches(v, filters or {})]
    total = len(filtered)
    if page == 0:
        selected, total_pages = filtered, 1
    else:
        page_size = max(10, min(100, page_size))
        total_pages = max(1, math.ceil(total / page_size))
        selected = filtered[(page - 1) * page_size : page * page_size]
    lines = [
        json.dumps(
            {
                "type": "schema",
                "profile": profile_name,
                "fields": fields if fields is not None else "all",
                "filters_applied": filters or {},
                "total_vulnerabilities": total,
                "total_pages": total_pages,
            }
        ),
        json.dumps({"type": "scan_metadata", "scan_name": scan_name}),
    ]
    lines.extend(json.dumps(v) for v in selected)
    if page != 0:
        has_next = page < total_pages
        lines.append(
            json.dumps(
                {
                    "type": "pagination",
                    "page": page,
                    "page_size": page_size,
                    "total_pages": total_pages,
                    "has_next": has_next,
                    "next_page": page + 1 if has_next else None,
                }
            )
        )
    return "\n".join(lines), len(selected)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--profile", default="brief")
    parser.add_argument("--custom-fields", default=None)
    parser.add_argument("--filters", default=None, help="JSON object")
    parser.add_argument("--page", type=int, default=1)
    parser.add_argument("--page-size", type=int, default=40)
    parser.add_argument("--stats", action="store_true")
    args = parser.parse_args()

    custom = args.custom_fields.split(",") if args.custom_fields is not None else None
    filters = json.loads(args.filters) if args.filters else None
    started = time.perf_counter()
    with open(args.file, "rb") as handle:
        data = handle.read()
    output, emitted = convert(data, args.profile, custom, filters, args.page, args.page_size)
    sys.stdout.write(output)
    sys.stdout.flush()
    elapsed = time.perf_counter() - started
    if args.stats:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stats = {
            "seconds": elapsed,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_kib": usage.ru_maxrss,
            "vulnerabilities": emitted,
        }
        print(json.dumps(stats), file=sys.stderr)


if __name__ == "__main__":
    main()
