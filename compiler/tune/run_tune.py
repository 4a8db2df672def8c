#!/usr/bin/env python3
"""Runner of a `strata tune` bundle, on the GPU machine (python3 + nvcc; no Node, no PyTorch).

  python3 run_tune.py [BUNDLE_DIR] [-j JOBS] [--limit S] [--budget-ms MS] [--only TEXT] [--out results.json]

1. builds every timing program (programs/*.cu: one per kernel variant and tile candidate) with
   nvcc, in parallel; a candidate that does not build, or spills registers, is left out;
2. runs each program once over its variant's problems (signature x token bucket), under a time
   limit per candidate run; the program checks its output against the default config's (max
   relative error) and times the candidate with CUDA events;
3. per problem, the fastest candidate whose output matches the default's within the tolerance
   wins (a wrong or failed candidate never does); writes results.json for
   `strata tune --import results.json` after every candidate run (a run stopped early keeps what it
   measured; --deadline stops starting candidates), and prints tuned vs default per problem.
"""
import argparse
import concurrent.futures
import datetime
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time

RESULTS_SCHEMA = "strata-tune-results"
RESULTS_VERSION = 1
# max |cand - ref| / max |ref| a candidate may differ from the default config by
TOLERANCE = {"bf16": 2e-2, "f32": 1e-3}


def log(msg):
    print(msg, flush=True)


@functools.lru_cache(maxsize=None)
def device_name():
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def build(bundle, prog, nvcc, gencode, timeout):
    """Compile one program; returns (name, binary or None, note)."""
    name = os.path.splitext(os.path.basename(prog["file"]))[0]
    out = os.path.join(bundle, "build", name)
    cmd = [nvcc, "-std=c++17", "-O3", *gencode, "-Xptxas", "-v", "-I", os.path.join(bundle, "include"), "-I", os.path.join(bundle, "harness"), "-o", out, os.path.join(bundle, prog["file"])]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return name, None, f"nvcc took more than {timeout}s"
    if r.returncode != 0:
        err = [l for l in r.stderr.splitlines() if "error" in l][:3]
        return name, None, "nvcc failed: " + (" | ".join(err) or r.stderr.strip()[-300:])
    spills = [int(m) for m in re.findall(r"(\d+) bytes spill stores", r.stderr)]
    if any(spills):
        return name, None, f"spills ({max(spills)} bytes of spill stores)"
    return name, out, "ok"


def run_program(binary, problems_file, budget_ms, limit):
    """Run one candidate over its problems; returns {id: (ms, rel) or error string} and a note."""
    got, note = {}, "ok"
    try:
        r = subprocess.run([binary, problems_file, str(budget_ms)], capture_output=True, text=True, timeout=limit)
        out = r.stdout
        if r.returncode not in (0, 1):
            note = f"exit {r.returncode}: {r.stderr.strip()[-200:]}"
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        note = f"stopped at the {limit}s limit"
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "RESULT":
            try:
                got[parts[1]] = (float(parts[2]), float(parts[3]))
            except ValueError:
                pass
        elif len(parts) >= 2 and parts[0] == "ERROR":
            got[parts[1]] = " ".join(parts[2:]) or "error"
    return got, note


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", nargs="?", default=here, help="the bundle folder (default: this script's)")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 4, help="parallel nvcc jobs")
    ap.add_argument("--limit", type=float, default=120.0, help="seconds one candidate may run over all its problems")
    ap.add_argument("--build-timeout", type=float, default=900.0, help="seconds one nvcc call may take")
    ap.add_argument("--budget-ms", type=float, default=100.0, help="GPU time spent timing one candidate on one problem")
    ap.add_argument("--deadline", type=float, default=None, help="seconds after which no further candidate starts (the rest count as not run); results.json is rewritten after every candidate run either way")
    ap.add_argument("--only", default=None, help="only problems whose signature contains this text")
    ap.add_argument("--nvcc", default=os.environ.get("NVCC", "nvcc"))
    ap.add_argument("--out", default=None, help="results file (default: BUNDLE/results.json)")
    a = ap.parse_args()

    bundle = os.path.abspath(a.bundle)
    with open(os.path.join(bundle, "tune.json")) as f:
        plan = json.load(f)
    if plan.get("schema") != "strata-tune-bundle" or plan.get("version") != 1:
        sys.exit(f"{bundle}/tune.json is not a version-1 strata tune bundle")
    if shutil.which(a.nvcc) is None:
        sys.exit(f"nvcc not found ({a.nvcc}); set --nvcc or NVCC")
    problems = [p for p in plan["problems"] if not a.only or a.only in p["signature"]]
    variants = {p["variant"] for p in problems}
    programs = [p for p in plan["programs"] if p["variant"] in variants]
    if not problems:
        sys.exit("no problems to run" + (f" (--only {a.only!r} matches no signature)" if a.only else ""))
    os.makedirs(os.path.join(bundle, "build"), exist_ok=True)

    # 1. build
    t0 = time.time()
    log(f"building {len(programs)} programs with {a.jobs} jobs ...")
    built, notes = {}, {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        futs = {ex.submit(build, bundle, p, a.nvcc, plan["gencode"], a.build_timeout): p for p in programs}
        for fut in concurrent.futures.as_completed(futs):
            p = futs[fut]
            name, binary, note = fut.result()
            key = (p["variant"], p["candidate"])
            notes[key] = note
            if binary:
                built[key] = binary
            else:
                log(f"  {name}: {note}")
    log(f"built {len(built)}/{len(programs)} in {time.time() - t0:.0f}s")

    # 2. run: per variant, the default first, then the other candidates; 3. choose after each run
    out = a.out or os.path.join(bundle, "results.json")
    measured = {}  # (problem id, candidate) -> (ms, rel) or error text
    for v in sorted(variants):
        vprobs = [p for p in problems if p["variant"] == v]
        fam = vprobs[0]["family"]
        cands = plan["candidates"][fam]
        default = next(c["name"] for c in cands if c["isDefault"])
        for c in sorted(cands, key=lambda c: (not c["isDefault"], c["name"])):
            key = (v, c["name"])
            if key not in built:
                for p in vprobs:
                    measured[(p["id"], c["name"])] = notes.get(key, "not built")
                continue
            if a.deadline is not None and time.time() - t0 > a.deadline:
                for p in vprobs:
                    measured[(p["id"], c["name"])] = f"not run (--deadline {a.deadline:g}s)"
                continue
            pf = os.path.join(bundle, "build", f"{v}__{c['name']}.problems.txt")
            with open(pf, "w") as f:
                for p in vprobs:
                    f.write(f"{p['id']} {p['M']} {p['N']} {p['K']} {p['splits'][c['name']]} {p['splits'][default]}\n")
            got, note = run_program(built[key], pf, a.budget_ms, a.limit)
            for p in vprobs:
                measured[(p["id"], c["name"])] = got.get(p["id"], note if note != "ok" else "no result")
            ok = sum(1 for p in vprobs if isinstance(got.get(p["id"]), tuple))
            log(f"  {v} {c['name']}: {ok}/{len(vprobs)} problems{'' if note == 'ok' else ' (' + note + ')'}")
            write_results(out, plan, problems, measured, quiet=True)
    n = write_results(out, plan, problems, measured, quiet=False)
    log(f"wrote {out}: {n}/{len(problems)} problems tuned; bring it back and run `strata tune --import {os.path.basename(out)}`")
    return 0 if n else 1


def write_results(out, plan, problems, measured, quiet):
    """Per problem, the fastest candidate whose output matches the default's; returns how many were tuned."""
    results = []
    for p in problems:
        cands = plan["candidates"][p["family"]]
        default = next(c for c in cands if c["isDefault"])
        tol = TOLERANCE.get(next(vv["out"] for vv in plan["variants"] if vv["id"] == p["variant"]), 2e-2)
        rows = []
        for c in cands:
            m = measured.get((p["id"], c["name"]), "not run")
            if isinstance(m, tuple):
                ms, rel = m
                status = "ok" if rel <= tol else f"wrong (max rel err {rel:.2e} > {tol:.0e})"
                rows.append({"name": c["name"], "ms": ms, "relErr": rel, "status": status})
            else:
                rows.append({"name": c["name"], "ms": None, "relErr": None, "status": str(m)})
        ref = next(r for r in rows if r["name"] == default["name"])  # the outputs every candidate is checked against
        # the untuned default of this problem's shape (tiles.ts defaultTiles), else the family's
        untuned = next((c for c in cands if c["name"] == p.get("defaultName")), default)
        d = next(r for r in rows if r["name"] == untuned["name"])
        valid = [r for r in rows if r["status"] == "ok"]
        res = {"family": p["family"], "signature": p["signature"], "bucket": p["bucket"], "tokens": p["tokens"], "M": p["M"], "N": p["N"], "K": p["K"],
               "defaultName": untuned["name"], "defaultTiles": untuned["tiles"], "defaultMs": d["ms"] if d["status"] == "ok" else None, "candidates": rows}
        if ref["status"] == "ok" and d["status"] == "ok" and valid:
            best = min(valid, key=lambda r: r["ms"])
            tiles = next(c["tiles"] for c in cands if c["name"] == best["name"])
            res.update({"bestName": best["name"], "tiles": tiles, "ms": best["ms"]})
            if not quiet:
                log(f"{p['id']}: best {best['name']} {best['ms']:.4f} ms, untuned default {untuned['name']} {d['ms']:.4f} ms ({d['ms'] / best['ms']:.2f}x)")
        else:
            res.update({"bestName": None, "tiles": None, "ms": None})
            if not quiet:
                log(f"{p['id']}: no result (default: {d['status']})")
        results.append(res)
    doc = {"schema": RESULTS_SCHEMA, "version": RESULTS_VERSION, "model": plan["model"], "arch": plan["arch"], "device": device_name(),
           "measuredAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "results": results}
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, out)
    return sum(1 for r in results if r["bestName"])


if __name__ == "__main__":
    sys.exit(main())
