#!/usr/bin/env python3
"""The probe experiment's runner (issue 9 item 7; tests/gpu/probe_experiment.md), on the GPU
machine, with no Node: builds every model of a probe bundle (tests/gpu/probe_bundle.ts writes it)
with make, trains each on each probe with `bin/model train` under the same budget, and collects
the held-out accuracy (answer tokens predicted exactly, argmax, over the whole evaluation set)
into a markdown table and JSON.

    python3 tests/gpu/probes.py [.probe-bundle] [--steps N] [--batch B] [--models a,b] [--probes mqar]

Writes BUNDLE/results/{results.json, results.md, NAME-PROBE.log, NAME-PROBE/ (the run folder:
checkpoint, loss.csv, loss.svg)} and prints the table; the last line is `N passed, N failed`
(a run that crashes or never reports an evaluation fails; an accuracy is a result, not a pass).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time


def build(model_dir, jobs):
    """make the project (nvcc); returns (ok, seconds, message)."""
    t0 = time.time()
    r = subprocess.run(["make", "-C", model_dir, f"-j{jobs}"], capture_output=True, text=True)
    tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
    return r.returncode == 0, time.time() - t0, tail


def train(bin_model, data, eval_data, out, budget, log_path):
    """One `bin/model train` run; returns a result dict (steps, evals, final accuracy, time)."""
    args = [bin_model, "train", "--data", data, "--eval-data", eval_data, "--steps", str(budget["steps"]), "--batch", str(budget["batch"]),
            "--lr", str(budget["lr"]), "--min-lr", str(budget["minLr"]), "--warmup", str(budget["warmup"]), "--weight-decay", str(budget["weightDecay"]),
            "--clip", str(budget["clip"]), "--seed", str(budget["seed"]), "--eval-every", str(budget["evalEvery"]), "--log-every", str(budget["logEvery"]),
            "--save-every", "0", "--out", out, "--json"]
    if budget.get("seq"):
        args += ["--seq", str(budget["seq"])]
    t0 = time.time()
    with open(log_path, "w") as log:
        log.write(" ".join(args) + "\n")
        log.flush()
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=log, text=True)
    secs = time.time() - t0
    steps, evals = [], []
    for line in r.stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("final"):
            continue  # the run's summary line
        (evals if "eval_loss" in rec else steps).append(rec)
    with open(log_path, "a") as log:
        log.write(r.stdout)
    res = {"exit": r.returncode, "seconds": secs, "steps": steps, "evals": evals}
    if evals:
        res["accuracy"] = evals[-1]["accuracy"]
        res["eval_loss"] = evals[-1]["eval_loss"]
    if steps:
        res["final_loss"] = steps[-1]["loss"]
        tps = [s["tokens_per_s"] for s in steps[1:]] or [steps[0]["tokens_per_s"]]
        res["tokens_per_s"] = sum(tps) / len(tps)
    if r.returncode != 0:
        with open(log_path) as f:
            res["error"] = " ".join(l.strip() for l in f.read().strip().splitlines()[-3:])
    return res


def table(models, probe_names, results, budget):
    head = "| model | pattern | params | " + " | ".join(f"{p} accuracy" for p in probe_names) + " |"
    out = [head, "|" + " --- |" * (3 + len(probe_names))]
    for m in models:
        cells = []
        for p in probe_names:
            r = results.get(m["name"], {}).get(p)
            if r is None:
                cells.append("not run")
            elif "accuracy" in r and r["exit"] == 0:
                cells.append(f"{100 * r['accuracy']:.1f}%")
            elif "build_error" in r:
                cells.append("build failed")
            else:
                cells.append(f"failed (exit {r['exit']})")
        out.append(f"| {m['name']} | `{m['pattern']}` | {m['params'] / 1e6:.2f}M | " + " | ".join(cells) + " |")
    b = budget
    out.append("")
    out.append(f"Same budget for every model: {b['steps']} steps × batch {b['batch']} (× the probe's row length − 1 tokens), "
               f"AdamW lr {b['lr']} → {b['minLr']} (cosine, {b['warmup']} warm-up steps), weight decay {b['weightDecay']}, clip {b['clip']}, seed {b['seed']}. "
               "Accuracy: answer tokens whose argmax prediction is right, over the whole held-out set (rows never seen in training).")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", nargs="?", default=".probe-bundle")
    ap.add_argument("--steps", type=int, help="override the bundle's budget (all models alike)")
    ap.add_argument("--batch", type=int, help="override the bundle's budget (all models alike)")
    ap.add_argument("--models", help="comma-separated model names (default: all)")
    ap.add_argument("--probes", help="comma-separated probes (default: all)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 4, help="make -j")
    ap.add_argument("--no-build", action="store_true", help="use the projects' bin/model as they are")
    a = ap.parse_args()

    bundle = os.path.abspath(a.bundle)
    with open(os.path.join(bundle, "probes.json")) as f:
        spec = json.load(f)
    budget = dict(spec["budget"])
    if a.steps:
        budget["steps"] = a.steps
    if a.batch:
        budget["batch"] = a.batch
    models = [m for m in spec["models"] if not a.models or m["name"] in a.models.split(",")]
    probe_names = [p for p in spec["probes"] if not a.probes or p in a.probes.split(",")]
    res_dir = os.path.join(bundle, "results")
    os.makedirs(res_dir, exist_ok=True)

    results = {}
    passed = failed = 0
    t_all = time.time()
    builds = {}
    if not a.no_build:  # all projects at once, the cores shared between them
        from concurrent.futures import ThreadPoolExecutor

        jobs = max(1, a.jobs // max(1, len(models)))
        with ThreadPoolExecutor(len(models) or 1) as ex:
            futs = {m["name"]: ex.submit(build, os.path.join(bundle, m["dir"]), jobs) for m in models}
            builds = {n: f.result() for n, f in futs.items()}
    t_train = time.time()
    for m in models:
        mdir = os.path.join(bundle, m["dir"])
        results[m["name"]] = {}
        if not a.no_build:
            ok, secs, tail = builds[m["name"]]
            print(f"{m['name']}: build {'ok' if ok else 'FAILED'} ({secs:.0f}s)", flush=True)
            if not ok:
                print(tail, flush=True)
                for p in probe_names:
                    results[m["name"]][p] = {"exit": -1, "build_error": tail}
                    failed += 1
                continue
        for p in probe_names:
            files = spec["probes"][p]
            out = os.path.join(res_dir, f"{m['name']}-{p}")
            shutil.rmtree(out, ignore_errors=True)  # a rerun starts afresh (bin/model train refuses a folder holding a run)
            r = train(os.path.join(mdir, "bin", "model"), os.path.join(bundle, files["train"]), os.path.join(bundle, files["eval"]), out, budget, os.path.join(res_dir, f"{m['name']}-{p}.log"))
            results[m["name"]][p] = r
            ok = r["exit"] == 0 and "accuracy" in r
            passed += ok
            failed += not ok
            acc = f"accuracy {100 * r['accuracy']:.1f}%" if "accuracy" in r else "no evaluation"
            extra = f", final loss {r['final_loss']:.4f}" if "final_loss" in r else ""
            tput = f", {r['tokens_per_s']:.0f} tokens/s" if "tokens_per_s" in r else ""
            print(f"{m['name']} on {p}: {acc}{extra}{tput}, {r['seconds']:.1f}s" + ("" if ok else f"  FAILED: {r.get('error', '')}"), flush=True)

    md = table(models, probe_names, results, budget)
    summary = {"budget": budget, "models": models, "probes": probe_names, "seconds": time.time() - t_all, "train_seconds": time.time() - t_train,
               "results": {mn: {p: {k: v for k, v in r.items() if k not in ("steps",)} for p, r in pr.items()} for mn, pr in results.items()}}
    with open(os.path.join(res_dir, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(res_dir, "results.md"), "w") as f:
        f.write(md + "\n")
    print()
    print(md)
    print(f"\ntraining {time.time() - t_train:.0f}s (builds included: {time.time() - t_all:.0f}s)")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
