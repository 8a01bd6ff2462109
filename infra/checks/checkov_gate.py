"""Decides whether checkov's JSON report on infra/ passes. Run by scripts/check-infra:
    python infra/checks/checkov_gate.py <checkov JSON report> <repository root>

checkov exits 0 when it cannot parse a file (it reports 0 checks for it), so its exit code proves nothing.
This gate fails when:
- any file had a parsing error, or no check ran at all;
- a check failed. checkov gives severities only with a Prisma Cloud API key; offline every severity is
  unknown, and then every failed check fails the gate. With severities, HIGH and CRITICAL (and unknown)
  fail, LOW and MEDIUM are printed as warnings;
- a suppression (`// checkov:skip=CKV_…: reason` inside the resource) has no reason or a token one;
- a suppression names a check that checkov did not skip there (stale: the check no longer applies).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

BLOCKING = {"HIGH", "CRITICAL", None}
MIN_REASON = 20
SKIP = re.compile(r"checkov:skip=([A-Za-z0-9_]+)(?::(.*))?")


def main(report_path: Path, root: Path) -> int:
    problems: list[str] = []
    warnings: list[str] = []
    try:
        raw = json.loads(report_path.read_text())
    except (OSError, ValueError) as error:
        print(f"  cannot read checkov's JSON report {report_path}: {error}")
        return 1
    reports = raw if isinstance(raw, list) else [raw]
    bicep = [r for r in reports if isinstance(r, dict) and r.get("check_type") == "bicep"]
    if not bicep or "summary" not in bicep[0]:
        print("  checkov produced no bicep report (did it find infra/*.bicep?)")
        return 1
    report = bicep[0]
    summary = report["summary"]
    results = report.get("results") or {}

    if summary.get("parsing_errors", 1) != 0:
        files = ", ".join(results.get("parsing_errors") or []) or "unknown files"
        problems.append(f"Parsing errors: {summary.get('parsing_errors')} ({files}); checkov checked nothing in them")
    ran = summary.get("passed", 0) + summary.get("failed", 0) + summary.get("skipped", 0)
    if ran == 0 or summary.get("resource_count", 0) == 0:
        problems.append("checkov ran no check at all")


    for check in results.get("failed_checks") or []:
        severity = check.get("severity")
        line = (
            f"{check.get('check_id')} [{severity or 'severity unknown'}] {check.get('check_name')}: "
            f"{check.get('resource')} in infra{normalise(check.get('file_path', ''), slash=True)}:"
            f"{'-'.join(str(n) for n in check.get('file_line_range') or [])}"
        )
        if (severity or None) in BLOCKING or str(severity).upper() in {"HIGH", "CRITICAL"}:
            problems.append(f"failed check {line} (fix it, or suppress it in the resource with a reason)")
        else:
            warnings.append(f"failed check {line}")

    skipped = set()
    for check in results.get("skipped_checks") or []:
        skipped.add((normalise(check.get("file_path", "")), check.get("check_id")))
        result = check.get("check_result") or {}
        reason = (result.get("suppress_comment") if isinstance(result, dict) else "") or ""
        reason = reason.strip()
        if reason == "No comment provided" or len(reason) < MIN_REASON:
            problems.append(
                f"suppression of {check.get('check_id')} on {check.get('resource')} has no real reason "
                f"(write `// checkov:skip={check.get('check_id')}: <why this is safe>`)"
            )

    for path in sorted((root / "infra").rglob("*.bicep")):
        rel = normalise(str(path.relative_to(root / "infra")))
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            match = SKIP.search(text)
            if match and (rel, match.group(1)) not in skipped:
                problems.append(
                    f"infra/{rel}:{number}: suppression of {match.group(1)} is stale (checkov skipped no such "
                    "check there); remove it, or move it inside the resource it is meant for"
                )

    print(
        f"  checkov {summary.get('checkov_version')}: {summary.get('passed')} passed, {summary.get('failed')} failed, "
        f"{summary.get('skipped')} suppressed with a reason, parsing errors: {summary.get('parsing_errors')}, "
        f"{summary.get('resource_count')} resources"
    )
    for warning in warnings:
        print(f"  warning: {warning}")
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


def normalise(path: str, slash: bool = False) -> str:
    """checkov reports paths relative to the scanned directory with a leading slash."""
    path = path.replace("\\", "/").lstrip("/")
    return f"/{path}" if slash else path


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else ".").resolve()))
