#!/usr/bin/env python3
"""Drive the nessus-core simulator with pyTenable's Nessus client (an independent client).

create -> launch -> status (poll until completed) -> export (token flow) -> download,
then a few cross-checks. Exits non-zero on any failure.

Usage: pytenable_sim.py URL   (normally run through scripts/pytenable_sim.sh)
"""

import sys
import time
from io import BytesIO

from tenable.nessus import Nessus


def main(url: str) -> int:
    nessus = Nessus(url=url, access_key="a" * 64, secret_key="b" * 64)

    props = nessus.server.properties()
    print(f"server: {props['nessus_type']} {props['server_version']}, "
          f"scan_api={props['license']['features']['scan_api']}")

    templates = {t["name"]: t["uuid"] for t in nessus.editor.template_list("scan")}
    folders = {f["type"]: f["id"] for f in nessus.folders.list()}
    scan = nessus.scans.create(
        uuid=templates["basic"],
        settings={
            "name": "pytenable-e2e",
            "text_targets": "192.0.2.10, 192.0.2.11",
            "folder_id": folders["main"],
            "enabled": False,
        },
    )["scan"]
    scan_id = scan["id"]
    print(f"created scan {scan_id}")

    run_uuid = nessus.scans.launch(scan_id)
    print(f"launched run {run_uuid}")

    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline:
        details = nessus.scans.details(scan_id)
        status = details["info"]["status"]
        if status in ("completed", "canceled", "aborted"):
            break
        time.sleep(0.3)
    print(f"final status {status}")
    if status != "completed":
        print("FAIL: scan did not complete", file=sys.stderr)
        return 1
    if details["info"]["uuid"] != run_uuid:
        print("FAIL: info.uuid is not the launch's scan_uuid", file=sys.stderr)
        return 1
    hosts = sorted(h["hostname"] for h in details["hosts"])
    if hosts != ["192.0.2.10", "192.0.2.11"]:
        print(f"FAIL: unexpected hosts {hosts}", file=sys.stderr)
        return 1

    report = nessus.scans.export_scan(scan_id, fobj=BytesIO(), format="nessus")
    body = report.getvalue().decode("utf-8")
    print(f"downloaded {len(body)} bytes of .nessus")
    for needle in ("<NessusClientData_v2", 'ReportHost name="192.0.2.10"', 'ReportHost name="192.0.2.11"'):
        if needle not in body:
            print(f"FAIL: export lacks {needle!r}", file=sys.stderr)
            return 1

    csv = nessus.scans.export_scan(scan_id, fobj=BytesIO(), format="csv").getvalue().decode("utf-8")
    if not csv.startswith("Plugin ID,CVE,CVSS,Risk,Host,"):
        print("FAIL: CSV export has no header", file=sys.stderr)
        return 1
    print(f"downloaded {len(csv)} bytes of CSV")

    listed = [s["name"] for s in nessus.scans.list()["scans"]]
    if listed.count("pytenable-e2e") != 1:
        print(f"FAIL: scan list {listed}", file=sys.stderr)
        return 1
    nessus.scans.delete(scan_id)
    print("deleted")

    # Session auth (POST /session, then X-Cookie) works as well.
    by_login = Nessus(url=url, username="admin", password="secret")
    if by_login.session.get()["username"] != "admin":
        print("FAIL: session login", file=sys.stderr)
        return 1
    print("session login works; PASS")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
