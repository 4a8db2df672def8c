#!/usr/bin/env python3
"""Training throughput of the ~0.85B hybrid (examples/hybrid-0.85b.ts, compiled with --train) in
Strata's `bin/model train`, against the same model in PyTorch (tests/gpu/train_peer.py: eager and
torch.compile) in the same run, on the same GPU. MFU from the one FLOP formula (train_flops.py).

  python3 tests/gpu/train_bench.py PROJECT_DIR DATA.tok [--batch 4] [--seq 4096] [--steps 8] [--peer eager,compile]

PROJECT_DIR is the built project (make -C PROJECT_DIR first). Strata's tokens/s is the median of
the steps after the first two (the first allocates the optimizer state and warms the caches).
Prints one JSON line per configuration and a markdown table with the ratios.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train_flops  # noqa: E402
from profile_table import print_profile  # noqa: E402

PEAK = 989e12


def strata_run(project, data, batch, seq, steps):
    out = "/dev/shm/strata-train-bench" if os.path.isdir("/dev/shm") else "/tmp/strata-train-bench"
    subprocess.run(["rm", "-rf", out])
    cmd = [os.path.join(project, "bin", "model"), "train", "--data", data, "--batch", str(batch), "--seq", str(seq), "--steps", str(steps),
           "--warmup", "1", "--lr", "1e-4", "--seed", "3", "--log-every", "1", "--json", "--no-checkpoint"]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    secs = time.time() - t0
    subprocess.run(["rm", "-rf", out])
    if r.returncode != 0:
        return {"impl": "strata", "ok": False, "error": r.stderr[-2000:], "seconds": secs}
    recs = [json.loads(l) for l in r.stdout.splitlines() if l.strip().startswith("{")]
    steps_ = [x for x in recs if "tokens_per_s" in x]
    timed = steps_[2:] if len(steps_) > 3 else steps_[1:]
    tps = statistics.median(x["tokens_per_s"] for x in timed)
    return {"impl": "strata", "ok": True, "tokens_per_s": tps, "losses": [x["loss"] for x in steps_], "seconds": secs, "log_tail": r.stderr[-600:]}


def strata_profile(project, data, batch, seq, steps=3, name="profile-train.csv"):
    """A few train steps with STRATA_PROFILE: every launch of the train schedule timed."""
    path = os.path.join(os.environ.get("OUT", "/tmp"), name)
    cmd = [os.path.join(project, "bin", "model"), "train", "--data", data, "--batch", str(batch), "--seq", str(seq), "--steps", str(steps),
           "--warmup", "1", "--lr", "1e-4", "--seed", "3", "--log-every", "1", "--no-checkpoint"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "STRATA_PROFILE": path})
    if r.returncode != 0 or not os.path.exists(path):
        print("profiled train run failed:\n" + r.stderr[-1500:], flush=True)
        return
    print_profile(path, "train", 20)
    for line in r.stderr.splitlines():  # where a step's time goes, the optimizer's passes included
        if line.startswith("train phases"):
            print("  " + line, flush=True)


def peer_run(mode, batch, seq, steps):
    cmd = [sys.executable, os.path.join(HERE, "train_peer.py"), "--modes", mode, "--batch", str(batch), "--seq", str(seq), "--steps", str(steps),
           "--warmup", "3"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    recs = [json.loads(l) for l in r.stdout.splitlines() if l.strip().startswith("{")]
    rec = next((x for x in recs if x.get("mode") == mode), None)
    if r.returncode != 0 or not rec:
        return {"impl": f"pytorch {mode}", "ok": False, "error": (r.stdout + r.stderr)[-1500:]}
    return {"impl": f"pytorch {mode}", "ok": bool(rec.get("tokens_per_s")), **rec}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("project")
    ap.add_argument("data")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--peer", default="eager,compile")
    ap.add_argument("--profile-csv", default="profile-train.csv", help="the profile's file name under $OUT")
    ap.add_argument("--profile", action="store_true", help="then 3 profiled steps (STRATA_PROFILE): the train step's kernels by time")
    a = ap.parse_args()
    with open(os.path.join(a.project, "manifest.json")) as f:
        manifest = json.load(f)
    spec = train_flops.spec_from_manifest(manifest)
    fpt = train_flops.train_flops_per_token(spec, a.seq)["total"]
    rows = [strata_run(a.project, a.data, a.batch, a.seq, a.steps)]
    for mode in [m for m in a.peer.split(",") if m]:
        rows.append(peer_run(mode, a.batch, a.seq, a.steps))
    for r in rows:
        if r.get("ok"):
            r["mfu"] = r["tokens_per_s"] * fpt / PEAK
        print(json.dumps({k: v for k, v in r.items() if k not in ("log_tail",)}, default=str), flush=True)
    s = rows[0]
    print(f"\n~0.85B hybrid training, batch {a.batch} × {a.seq}, {fpt / 1e9:.3f} GFLOP/token (train_flops.py), peak {PEAK / 1e12:.0f} TFLOP/s")
    print("| implementation | tokens/s | MFU | Strata / this |")
    print("|---|---|---|---|")
    for r in rows:
        if not r.get("ok"):
            print(f"| {r['impl']} | failed | | |")
            continue
        ratio = s["tokens_per_s"] / r["tokens_per_s"] if s.get("ok") else float("nan")
        print(f"| {r['impl']} | {r['tokens_per_s']:,.0f} | {r['mfu'] * 100:.1f}% | {ratio:.2f} |")
    if not s.get("ok"):
        print("strata train failed:\n" + s.get("error", ""))
        sys.exit(1)
    if a.profile:
        strata_profile(a.project, a.data, a.batch, a.seq, name=a.profile_csv)


if __name__ == "__main__":
    main()
