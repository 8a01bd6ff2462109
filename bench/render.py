"""Rewrites the figures in BENCHMARKS.md from the harness's JSON (scripts/bench runs it).

Only the part between the `<!-- figures:begin -->` and `<!-- figures:end -->` markers is replaced; the
method and the explanations around it are prose kept by hand.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys

BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine():
    lscpu = sh(["lscpu"])
    model = re.search(r"Model name:\s*(.+)", lscpu)
    hyper = re.search(r"Hypervisor vendor:\s*(.+)", lscpu)
    mem = re.search(r"Mem:\s+(\d+)", sh(["free", "-m"]))
    load = sh(["cat", "/proc/loadavg"]).split()[:3]
    kernel = sh(["uname", "-r"]).strip()
    parts = [
        f"{sh(['nproc']).strip()} CPUs ({model.group(1).strip() if model else 'unknown'}"
        + (f", {hyper.group(1).strip()} guest" if hyper else "") + ")",
        f"{int(mem.group(1)) / 1024:.1f} GiB RAM" if mem else "RAM unknown",
        f"Linux {kernel}",
        f"load average when rendered {' '.join(load)} (the cores are shared with other builds)",
    ]
    return ", ".join(parts)


def verdict(ok, miss):
    return "met" if ok else f"**missed** ({miss})"


def mb(kb):
    return f"{kb / 1024:.1f} MiB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("doc")
    ap.add_argument("--build-seconds", type=int, default=0)
    ap.add_argument("--total-seconds", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    r = json.load(open(a.results))
    # When the harness finished writing its figures, not when this renders them.
    mtime = os.path.getmtime(a.results)
    now = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = []
    w = out.append
    w(f"Measured {now} by `scripts/bench`{' --quick (smoke run: fewer runs, a smaller sweep)' if a.quick else ''}"
      f" on {machine()}. The command took {a.total_seconds // 60} min {a.total_seconds % 60} s"
      f" ({a.build_seconds} s of it building)."
      + (f" Host speed control (SHA-256 of 128 MiB on one thread, median of 5; lower is faster): {r['hostControlBeforeMs']:.0f} ms before the runs,"
         f" {r['hostControlAfterMs']:.0f} ms after." if "hostControlBeforeMs" in r else "")
      + (f" Kernel control (10,000 one-byte round trips over loopback TCP, median of 3): {r['hostLoopbackBeforeMs']:.0f} ms before,"
         f" {r['hostLoopbackAfterMs']:.0f} ms after." if "hostLoopbackBeforeMs" in r else ""))
    w("")
    w("| # | figure | measured | target | verdict |")
    w("|---|---|---|---|---|")
    s = r.get("startup")
    if s:
        ready = s["readyMs"]["median"]
        w(f"| 1 | process start → first answer on `GET /` (median of {s['runs']}) | {ready:.2f} ms (min {s['readyMs']['min']:.2f}, p90 {s['readyMs']['p90']:.2f}) | < 20 ms | {verdict(ready < 20, 'by %.1f ms' % (ready - 20))} |")
        az = s.get("readyAzureShapeMs")
        if az:
            w(f"| 1 | the same in the shape the app has in Azure (Blob ledger and Databricks through the managed identity, the platform's root certificates; median of {s['runs']}) | {az['median']:.2f} ms (p90 {az['p90']:.2f}) | < 20 ms | {verdict(az['median'] < 20, 'by %.1f ms' % (az['median'] - 20))} |")
        w(f"| 1 | process start → first successful callback (a cold grant, median) | {s['firstGrantMs']['median']:.2f} ms (p90 {s['firstGrantMs']['p90']:.2f}) | | |")
        py = s["python"]
        if py["runs"]:
            ratio = s["ratio"]
            w(f"| 1 | Python route (azure.functions + databricks.sdk) → the same grant (median of {py['runs']}) | {py['firstGrantMs']['median']:.0f} ms (min {py['firstGrantMs']['min']:.0f}) | | |")
            w(f"| 1 | ratio Python / uc-access, first grant | **{ratio:.1f}×** | ≥ 50× | {verdict(ratio >= 50, 'by %.1f×' % (50 - ratio))} |")
        else:
            w(f"| 1 | Python route | not measured: {py['error']} | | **not measured** |")
        c = s["calls"]
        cold, warm = c["coldMedian"], c["warmMedian"]
        w(f"| 3 | Databricks requests, cold approval (fresh process) | {cold:.0f}: {fmt_kinds(c['cold'])} | ≤ 6 | {verdict(cold <= 6, 'by %.0f' % (cold - 6))} |")
        w(f"| 3 | Databricks requests, warm approval (same requester, another table of the schema) | {warm:.0f}: {fmt_kinds(c['warm'])} | ≤ 4 | {verdict(warm <= 4, 'by %.0f' % (warm - 4))} |")
        if "coldSharedTokenTotal" in c:
            shared = c["coldSharedTokenTotal"]
            w(f"| 3 | the same cold approval with one token for every host (as with the managed identity in Azure, whose token comes from Entra ID) | {shared}: {fmt_kinds(c['coldSharedToken'])} | ≤ 6 | {verdict(shared <= 6, 'by %d' % (shared - 6))} |")
        w(f"| 3 | SCIM lookups for a repeated requester (two approvals) | {c['scimForTwoApprovalsOfOneRequester']} | | |")
    t = r.get("throughput")
    if t:
        fetched = sum(m["tokenFetches"] for m in t.values())
        approvals = sum(m["approvals"] for m in t.values())
        secs = sum(m["seconds"] for m in t.values())
        w(f"| 3 | token fetches | {fetched} during {approvals:,} approvals over {secs:.0f} s in {len(t)} processes, after each process's first approval fetched its one (OAuth M2M: the account token, which the stand-in's workspace accepts as the real service is said to; a workspace that refuses it adds its own token once, see docs/databricks.md). A token is kept until 5 minutes before it expires (3600 s), so **about 1.1 per hour**: with M2M for the account and its workspaces together, as with the managed identity's single Entra token | | |")
        for mode, m in t.items():
            label = "at once" if mode == "0ms" else f"after {mode.replace('ms', ' ms')}"
            for lv in m["levels"]:
                own = lv["ownMs"]["p99"]
                target = "< 1 ms" if lv["concurrency"] == 128 else ""
                v = verdict(own < 1, "by %.2f ms" % (own - 1)) if lv["concurrency"] == 128 else ""
                errs = "" if not lv["errors"] else " (%d not 200)" % lv["errors"]
                w(f"| 2 | stand-in answering {label}, concurrency {lv['concurrency']}: {lv['requests']} callbacks"
                  f"{errs} | {lv['perSecond']:.0f}/s; total p50 {lv['totalMs']['p50']:.2f} / p99 {lv['totalMs']['p99']:.2f} ms;"
                  f" handler's own p50 {lv['ownMs']['p50']:.3f} / **p99 {own:.3f} ms**; app CPU {lv.get('appCpuMsPerCallback', float('nan')):.2f} ms per callback (harness: load generator and stand-in, same cores, {lv.get('harnessCpuMsPerCallback', float('nan')):.2f} ms);"
                  f" {lv['databricksCallsPerApproval']:.2f} Databricks requests per callback | {target} | {v} |")
    tb = r.get("throughputBlob")
    if tb:
        for lv in tb["levels"]:
            errs = "" if not lv["errors"] else " (%d not 200)" % lv["errors"]
            w(f"| 2 | with the **Blob ledger** (Azurite over HTTPS, managed identity), stand-in at once, concurrency {lv['concurrency']}: {lv['requests']} callbacks"
              f"{errs} | {lv['perSecond']:.0f}/s; total p50 {lv['totalMs']['p50']:.2f} / p99 {lv['totalMs']['p99']:.2f} ms;"
              f" handler's own (its Blob requests included) p50 {lv['ownMs']['p50']:.2f} / p99 {lv['ownMs']['p99']:.2f} ms; app CPU {lv['appCpuMsPerCallback']:.2f} ms per callback, Azurite {lv['ledgerServerCpuMsPerCallback']:.2f} ms, harness {lv['harnessCpuMsPerCallback']:.2f} ms (same cores) | | |")
        w(f"| 2 | storage tokens asked of the identity endpoint during those {sum(l['requests'] for l in tb['levels']) + 5:,} approvals | {tb['storageTokenRequests']} | | |")
    sw = r.get("sweep")
    if sw:
        rep = sw.get("report") or {}
        ok_patch = sw["patchCalls"] <= sw["securablesTouched"]
        secs, peak_b = sw["seconds"], sw["peakRssKb"] * 1024
        extra = sw["patchCalls"] - sw["securablesTouched"]
        w(f"| 4 | revoke sweep: {sw['dueGrants']:,} due grants, {sw['tables']:,} tables, {sw['principals']:,} principals, stand-in limited to 25 requests/s | {secs:.1f} s wall; revoked {rep.get('revoked', '?')}, failed {rep.get('failed', '?')}, left for the next run {rep.get('deferred', 0)}; {sw['assignmentsLeft']} of the added assignments left | < 3 min | {verdict(secs < 180 and sw['status'] == 200 and not rep.get('deferred') and not sw['assignmentsLeft'], 'by %.0f s' % (secs - 180))} |")
        w(f"| 4 | sweep PATCH calls | {sw['patchCalls']:,} accepted ({sw['patchAttempts']:,} sent, {sw['throttled429']:,} answers 429 in all); one per grant would be {sw['dueGrants']:,} | ≤ {sw['securablesTouched']:,} securables touched | {verdict(ok_patch, '%d too many' % extra)} |")
        w(f"| 4, 5 | peak resident memory during the sweep | {mb(sw['peakRssKb'])} | < 64 MB | {verdict(peak_b < 64e6, 'by %.1f MB' % ((peak_b - 64e6) / 1e6))} |")
    sb = r.get("sweepBlob")
    if sb:
        rep = sb.get("report") or {}
        st = sb["storageRequests"]
        per = st["total"] / max(rep.get("revoked") or 1, 1)
        kinds = ", ".join(f"{v:,} {k}" for k, v in sorted(st["byKind"].items(), key=lambda kv: -kv[1]))
        w(f"| 4 | revoke sweep with the **Blob ledger** (Azurite over HTTPS, managed identity): {sb['dueGrants']:,} due grants, {sb['principals']:,} principals of 10 grants (the shape above at 1/50: Azurite's tag queries see only a container's first 5,000 blobs), stand-in limited to 25 requests/s"
          f" | {sb['seconds']:.1f} s wall (first `PATCH` after {sb['firstRequestAfterS']} s, last answered at {sb['lastRequestEndS']} s); revoked {rep.get('revoked', '?')}, failed {rep.get('failed', '?')}, left for the next run {rep.get('deferred', 0)}; {sb['assignmentsLeft']} of the added assignments left;"
          f" {sb['patchCalls']:,} `PATCH` calls accepted for {sb['securablesTouched']:,} securables touched; app CPU {sb['appCpuSeconds']} s, Azurite {sb['azuriteCpuSeconds']} s (same cores); peak resident {mb(sb['peakRssKb'])} | | |")
        w(f"| 4 | storage requests of that sweep | {st['total']:,}, **{per:.1f} per revoked grant**: {kinds}; storage tokens asked for: {sb['storageTokenRequests']} | | |")
    f = r.get("footprint")
    if f:
        w(f"| 5 | binary size (`benchmark` profile, stripped) | {f['binaryBytes']:,} bytes ({f['binaryBytes'] / 2**20:.1f} MiB) | | |")
    if s:
        w(f"| 5 | idle resident memory (after `GET /`, median) | {mb(s['idleRssKb'])} | | |")
    if t:
        peak = max(m["peakRssKb"] for m in t.values())
        w(f"| 5 | peak resident memory under load (concurrency 128) | {mb(peak)} | | |")
    if tb:
        w(f"| 5 | peak resident memory under load with the Blob ledger (concurrency 128) | {mb(tb['peakRssKb'])} | | |")
    w("| 5 | deployment zip (shipped `release` build, `scripts/package`) | 5,763,571 bytes (5.50 MiB), measured by the packaging step of `.ci/run` on 2026-11-24 00:43 UTC (not by this command) | < 10 MB | met |")
    text = open(a.doc).read()
    if BEGIN not in text or END not in text:
        sys.exit(f"{a.doc} lacks the {BEGIN} / {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    open(a.doc, "w").write(head + BEGIN + "\n" + "\n".join(out) + "\n" + END + tail)


def fmt_kinds(kinds):
    if not isinstance(kinds, dict):
        return ""
    return ", ".join(f"{v} {k}" for k, v in kinds.items())


if __name__ == "__main__":
    main()
