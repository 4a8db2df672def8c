#!/usr/bin/env python3
"""The train entry of the tiny models on the GPU, against the reference interpreter, and
`bin/model train` end to end. No Node needed: the bundle (npm run gpu:bundle) holds the projects
(compiled with --train), the weights, tokens, targets, loss weights, and the interpreter's loss and
gradients (train_golden.safetensors, float64 from the same bf16 weights, stored as f32).

  python3 tests/gpu/train_check.py BUNDLE [--only NAME] [--no-cli]

Checks, per tiny model:
  - the loss, relative error against the interpreter's;
  - every weight's gradient: relative L2 error (‖g − ref‖ / ‖ref‖), the worst tensor reported;
  - determinism: a second train_step gives bit-identical gradients (training resume relies on it).
Then, for tiny-hybrid, `bin/model train` on Moby Dick (bytes):
  - the loss falls; a checkpoint resumed at step K continues with bit-identical losses;
  - the trained weights load into `bin/model forward`.
Prints one PASS/FAIL line per check and exits 1 on any failure.
"""
import ctypes
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import entries  # noqa: E402

# Tolerances: bf16 activations and weights on the GPU against float64. The gradients pass through
# the whole network backwards, so they get a looser bound than the forward's logits.
TOL = {"loss": 2e-2, "grad": 6e-2}

failures = []


def check(name, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        failures.append(name)


def grads_of(m, names_shapes):
    out = {}
    for name, shape in names_shapes:
        g = np.empty(int(np.prod(shape)), dtype=np.float32)
        m.ok(m.lib.strata_model_gradient(m.m, name.encode(), g, g.size))
        out[name] = g.reshape(shape)
    return out


def check_grads(project_dir):
    name = os.path.basename(project_dir.rstrip("/"))
    m = entries.Model(project_dir, os.path.join(project_dir, "weights.safetensors"))
    lib = m.lib
    i32p = np.ctypeslib.ndpointer(np.int32, flags="C_CONTIGUOUS")
    f32p = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
    lib.strata_model_train_step.argtypes = [ctypes.c_void_p, i32p, i32p, f32p, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.strata_model_gradient.argtypes = [ctypes.c_void_p, ctypes.c_char_p, f32p, ctypes.c_size_t]
    toks = np.ascontiguousarray(np.load(os.path.join(project_dir, "tokens.npy")).astype(np.int32))
    tg = np.ascontiguousarray(np.load(os.path.join(project_dir, "targets.npy")).astype(np.int32))
    lw = np.ascontiguousarray(np.load(os.path.join(project_dir, "lossweights.npy")).astype(np.float32))
    golden = load_file(os.path.join(project_dir, "train_golden.safetensors"))
    ref_loss = float(golden.pop("@loss")[0])
    B, T = toks.shape
    loss = ctypes.c_float(float("nan"))
    m.ok(lib.strata_model_train_step(m.m, toks, tg, lw, B, T, ctypes.byref(loss)))
    lerr = abs(loss.value - ref_loss) / abs(ref_loss)
    check(f"{name} train loss", lerr <= TOL["loss"], f"{loss.value:.6f} vs interpreter {ref_loss:.6f} (rel {lerr:.2e})")
    shapes = [(k, v.shape) for k, v in golden.items()]
    g1 = grads_of(m, shapes)
    errs = {}
    for k, ref in golden.items():
        g = g1[k]
        if not np.all(np.isfinite(g)):
            errs[k] = float("inf")
            continue
        errs[k] = entries.rel(g, ref)
    worst = sorted(errs.items(), key=lambda kv: -kv[1])
    ok = worst[0][1] <= TOL["grad"]
    top = ", ".join(f"{k} {e:.2e}" for k, e in worst[:3])
    med = float(np.median(list(errs.values())))
    check(f"{name} gradients ({len(errs)} weights)", ok, f"worst {top}; median {med:.2e}")
    # determinism: the same step again, bit for bit
    loss2 = ctypes.c_float(float("nan"))
    m.ok(lib.strata_model_train_step(m.m, toks, tg, lw, B, T, ctypes.byref(loss2)))
    g2 = grads_of(m, shapes)
    same = loss2.value == loss.value and all(np.array_equal(g1[k].view(np.uint32), g2[k].view(np.uint32)) for k in g1)
    check(f"{name} train step deterministic", same, "" if same else f"loss {loss.value!r} vs {loss2.value!r}")
    m.close()
    return {"name": name, "loss": loss.value, "ref_loss": ref_loss, "loss_rel": lerr, "worst": worst[:3], "median": med}


def losses(stdout):
    out = {}
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if "loss" in r and "step" in r:
            out[int(r["step"])] = r["loss"]
    return out


def run_cli(bundle, project_dir, work):
    exe = os.path.join(project_dir, "bin", "model")
    data, ev = os.path.join(bundle, "moby-train.tok"), os.path.join(bundle, "moby-eval.tok")
    common = ["--data", data, "--eval-data", ev, "--batch", "2", "--seq", "128", "--lr", "2e-3", "--warmup", "5", "--seed", "11",
              "--eval-every", "40", "--eval-batches", "4", "--json"]
    a = os.path.join(work, "runA")
    r = subprocess.run([exe, "train", *common, "--steps", "80", "--save-every", "40", "--out", a], capture_output=True, text=True, timeout=600)
    check("model train (80 steps) exits 0", r.returncode == 0, r.stderr[-1500:] if r.returncode else r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "")
    if r.returncode:
        return
    la = losses(r.stdout)
    first = np.mean([la[s] for s in sorted(la)[:5]])
    last = np.mean([la[s] for s in sorted(la)[-5:]])
    check("model train: the loss falls on Moby Dick", last < first - 0.5, f"mean of the first 5 steps {first:.3f} → last 5 {last:.3f}")
    # resume from the step-40 checkpoint: the same losses for steps 41..80, bit for bit
    c = os.path.join(work, "runC")
    shutil.copytree(a, c)
    with open(os.path.join(c, "latest"), "w") as f:
        f.write("step-40\n")
    r2 = subprocess.run([exe, "train", "--resume", c, "--json"], capture_output=True, text=True, timeout=600)
    check("model train --resume exits 0", r2.returncode == 0, r2.stderr[-1500:] if r2.returncode else "")
    if r2.returncode == 0:
        lc = losses(r2.stdout)
        later = [s for s in sorted(la) if s > 40]
        same = bool(later) and all(s in lc and lc[s] == la[s] for s in later)
        diff = [(s, la[s], lc.get(s)) for s in later if lc.get(s) != la[s]][:3]
        check("model train --resume: bit-identical losses after the checkpoint", same, f"{len(later)} steps compared" + (f"; first differences {diff}" if diff else ""))
    # the trained weights load into forward unchanged
    ck = os.path.join(a, "step-80", "model.safetensors")
    out = os.path.join(work, "logits.npy")
    r3 = subprocess.run([exe, "forward", "--weights", ck, "--tokens", os.path.join(project_dir, "tokens.npy"), "--out", out], capture_output=True, text=True, timeout=300)
    check("trained weights load into model forward", r3.returncode == 0 and os.path.exists(out), r3.stderr[-800:] if r3.returncode else "")
    svg = os.path.join(a, "loss.svg")
    check("loss curve written", os.path.exists(svg) and os.path.getsize(svg) > 200, svg)


def main():
    bundle = sys.argv[1]
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    with open(os.path.join(bundle, "bundle.json")) as f:
        projects = [p for p in json.load(f)["projects"] if p.get("train") and (only is None or p["name"] == only)]
    results = []
    for p in projects:
        d = os.path.join(bundle, p["name"])
        if not os.path.exists(os.path.join(d, "lib", "libmodel.so")):
            check(f"{p['name']} built", False, "lib/libmodel.so missing (build it first: make -C DIR)")
            continue
        try:
            results.append(check_grads(d))
        except Exception as e:  # noqa: BLE001 — report and go on with the next model
            check(f"{p['name']} train entry", False, str(e)[:500])
    if "--no-cli" not in sys.argv and (only is None or only == "tiny-hybrid"):
        work = os.path.join(os.environ.get("OUT", "/tmp"), "train-cli")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        run_cli(bundle, os.path.join(bundle, "tiny-hybrid"), work)
    print(json.dumps({"train_check": results}, default=str))
    print(f"train checks: {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
