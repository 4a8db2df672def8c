#!/usr/bin/env python3
"""Strata's GPU suite: runs on a machine with a GPU and nvcc, without Node.

Input: the bundle written by `npm run gpu:bundle` (default .gpu-bundle/): compiled model projects
(sources + Makefile), fresh random weights (safetensors), tokens and the reference interpreter's
golden logits (.npy), and bundle.json describing the checks. Steps:
  1. build every project with make (nvcc), in parallel;
  2. run each tiny model's forward and compare with the golden logits (tolerances: one table),
     and both with an independent PyTorch implementation (torch_reference.py, float64);
  3. compute-sanitizer memcheck on one model;
  4. the 8B Mamba-2-Hybrid forward at sequence 4096 with initialised weights (finite, time), then
     generation benchmarks (decode_bench.py: decode vs the HBM roofline, hybrid vs Transformer at
     4K-128K contexts, time to first token, tiny models vs HF transformers' generate);
  5. kernel benchmarks against peers in the same run (cuBLAS, torch SDPA, PyTorch SSD / scan);
prints PASS/FAIL per check, a benchmark table, and a closing `N passed, N failed` line.

Usage: python3 tests/gpu/run_suite.py [BUNDLE_DIR] [--skip-bench] [--skip-8b] [--skip-decode] [--only-bench]
       [--train-bench [--only-train-bench]] [--skip-train]   (STRATA_TRAIN_PEERS=eager: the training
       benchmark's PyTorch peers, default eager,compile)
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import entries  # noqa: E402
from profile_table import print_profile  # noqa: E402
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
BUNDLE = os.path.abspath(ARGS[0] if ARGS else os.path.join(REPO, ".gpu-bundle"))
OUT = os.environ.get("OUT", "/tmp/strata-gpu-out")
os.makedirs(OUT, exist_ok=True)

# Dense bf16 tensor-core rate measured on this workplace's H200s (cuBLAS, 8192³ on random data):
# the roofline the 8B forward is compared with.
BF16_PEAK_TFLOPS = 790.0

# Relative-error tolerances ‖out − ref‖ / ‖ref‖. (One table.)
TOLERANCE = {
    "bf16": 2e-2,  # CUDA kernels (bf16 activations, fp32 accumulation) vs a float64 reference
    "f64-stored-f32": 1e-5,  # two float64 implementations (interpreter, PyTorch), logits stored as float32
    "bf16-token": 5e-2,  # the worst single position's logit vector, CUDA vs float64
}

results = []  # (name, ok, detail)
bench_rows = []  # (family, shape, ours_ms, peer, peer_ms, rate, ratio)


def check(name, ok, detail=""):
    results.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'} {name}{(' — ' + detail) if detail else ''}", flush=True)


def sh(cmd, cwd=None, timeout=None, env=None):
    t0 = time.time()
    p = subprocess.run(cmd, cwd=cwd, shell=isinstance(cmd, str), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, time.time() - t0


def tail(text, n=25):
    return "\n".join(text.splitlines()[-n:])


# one implementation of the error measures (entries.py), shared with the entry-point checks
rel_err = entries.rel


def worst_token(out, ref):
    """Largest relative error of one position's logit vector (the global error can hide one bad token)."""
    return float(entries.per_token(out, ref).max())


def sass_checks(project, log):
    """On the GPU machine (which has cuobjdump, unlike CI): no kernel of the project spills (ptxas -v
    in its make log; a cached object prints nothing, so a clean build is what this covers), and on
    sm_90a every forward GEMM's SASS has wgmma (HGMMA) instructions."""
    spills = [l.strip() for l in log.splitlines() if re.search(r"[1-9][0-9]* bytes spill (stores|loads)", l)]
    check(f"{project['name']}: no kernel spills registers (ptxas)", not spills, "; ".join(spills[:4]) or "0 spill bytes in the build log")
    tool = shutil.which("cuobjdump")
    objs = sorted(glob.glob(os.path.join(project["dir"], "build", "kernels", "gemm_*.o")))
    if not tool or not objs or project["kind"] not in ("big", "serving", "trainbench"):
        return
    missing = []
    for o in objs:
        r = subprocess.run([tool, "-sass", o], capture_output=True, text=True)
        if not re.search(r"\bHGMMA\.", r.stdout):
            missing.append(os.path.basename(o))
    check(f"{project['name']}: every GEMM kernel's SASS has HGMMA (cuobjdump, {len(objs)} objects)", not missing, ", ".join(missing) or "")


def build(project):
    rc, log, secs = sh(["make", "-j", str(os.cpu_count() or 8)], cwd=project["dir"])
    return project, rc, log, secs


def main():
    with open(os.path.join(BUNDLE, "bundle.json")) as f:
        bundle = json.load(f)
    projects = bundle["projects"]
    print(f"bundle seed {bundle['seed']} (weights, tokens; set STRATA_SEED when making the bundle to reproduce)", flush=True)
    for p in projects:
        p["dir"] = os.path.join(BUNDLE, p["name"])
    if "--skip-8b" in sys.argv:
        projects = [p for p in projects if p["kind"] != "big"]
    if "--train-bench" not in sys.argv:
        projects = [p for p in projects if p["kind"] != "trainbench"]
    if "--only-train-bench" in sys.argv:
        projects = [p for p in projects if p["kind"] == "trainbench"]
    if "--only-bench" in sys.argv:
        projects = []

    # 1. build (a few projects at a time; make -j inside each)
    print(f"== building {len(projects)} projects with nvcc", flush=True)
    built = {}
    with ThreadPoolExecutor(max_workers=3) as ex:
        for p, rc, log, secs in ex.map(build, projects):
            check(f"build {p['name']}", rc == 0, f"{secs:.0f}s" if rc == 0 else tail(log))
            built[p["name"]] = rc == 0
            if rc == 0:
                sass_checks(p, log)

    # 2. golden checks
    for p in projects:
        if p["kind"] != "golden" or not built[p["name"]]:
            continue
        out = os.path.join(OUT, f"{p['name']}-logits.npy")
        if os.path.exists(out):
            os.remove(out)
        cmd = [os.path.join(p["dir"], "bin", "model"), "forward", "--weights", os.path.join(p["dir"], "weights.safetensors"),
               "--tokens", os.path.join(p["dir"], "tokens.npy"), "--out", out]
        rc, log, secs = sh(cmd, timeout=300)
        if rc != 0:
            check(f"forward {p['name']} matches the interpreter", False, tail(log))
            continue
        got = np.load(out)
        ref = np.load(os.path.join(p["dir"], "golden.npy"))
        finite = bool(np.isfinite(got).all())
        err = rel_err(got, ref) if got.shape == ref.shape else float("inf")
        tol = TOLERANCE["bf16"]
        wt = worst_token(got, ref) if got.shape == ref.shape else float("inf")
        check(f"forward {p['name']} matches the interpreter", finite and err <= tol and wt <= TOLERANCE["bf16-token"],
              f"rel err {err:.2e} (tol {tol:g}), worst token {wt:.2e} (tol {TOLERANCE['bf16-token']:g}), shape {list(got.shape)}, finite={finite}")
        # the cached entry points (prefill, step, chunked prefill) through the C ABI
        try:
            toks = np.load(os.path.join(p["dir"], "tokens.npy"))
            er = entries.run(p["dir"], os.path.join(p["dir"], "weights.safetensors"), toks, ref, p["prefill"], p["vocab"])
            for what, (g, w, detail) in er.items():
                check(f"{what} {p['name']} matches the interpreter's forward", g <= tol and w <= TOLERANCE["bf16-token"],
                      f"rel err {g:.2e}, worst token {w:.2e} — {detail}")
        except Exception as e:
            check(f"prefill/step {p['name']}", False, f"{type(e).__name__}: {e}")
        # an independent implementation: PyTorch, written from the published layer conventions
        try:
            import torch_reference
            torch_ref = torch_reference.forward(p["dir"], np.load(os.path.join(p["dir"], "tokens.npy")))
        except Exception as e:  # a reference failure is a failed check, not a crash of the suite
            check(f"PyTorch reference {p['name']}", False, f"{type(e).__name__}: {e}")
            continue
        e_interp = rel_err(ref, torch_ref)
        check(f"interpreter {p['name']} matches the PyTorch reference (float64)", e_interp <= TOLERANCE["f64-stored-f32"],
              f"rel err {e_interp:.2e} (tol {TOLERANCE['f64-stored-f32']:g})")
        e_gpu = rel_err(got, torch_ref)
        check(f"forward {p['name']} matches the PyTorch reference", finite and e_gpu <= tol, f"rel err {e_gpu:.2e} (tol {tol:g}), worst token {worst_token(got, torch_ref):.2e}")

    # 3. memcheck on one model
    mc = next((p for p in projects if p.get("memcheck") and built.get(p["name"])), None)
    if mc:
        out = os.path.join(OUT, "memcheck-logits.npy")
        cmd = ["compute-sanitizer", "--tool", "memcheck", "--error-exitcode", "9", os.path.join(mc["dir"], "bin", "model"), "forward",
               "--weights", os.path.join(mc["dir"], "weights.safetensors"), "--tokens", os.path.join(mc["dir"], "tokens.npy"), "--out", out]
        rc, log, secs = sh(cmd, timeout=400)
        summary = [l for l in log.splitlines() if "ERROR SUMMARY" in l]
        check(f"compute-sanitizer memcheck {mc['name']}", rc == 0 and bool(summary) and " 0 errors" in summary[-1],
              summary[-1].strip() if summary else tail(log, 15))
        # and the cached entries (prefill, steps, chunked prefill) under memcheck
        cmd = ["compute-sanitizer", "--tool", "memcheck", "--error-exitcode", "9", sys.executable, os.path.join(HERE, "entries.py"), mc["dir"],
               os.path.join(mc["dir"], "golden.npy"), os.path.join(mc["dir"], "tokens.npy"), str(mc["prefill"])]
        rc, log, secs = sh(cmd, timeout=400)
        summary = [l for l in log.splitlines() if "ERROR SUMMARY" in l]
        check(f"compute-sanitizer memcheck {mc['name']} prefill + step", rc == 0 and bool(summary) and " 0 errors" in summary[-1],
              summary[-1].strip() if summary else tail(log, 15))

    # 3b. training: the train entry's loss and gradients against the interpreter, determinism,
    # and `bin/model train` (loss falls, bit-identical resume, trained weights load)
    if "--skip-train" not in sys.argv and any(p.get("train") and built.get(p["name"]) for p in projects):
        rc, log, secs = sh([sys.executable, os.path.join(HERE, "train_check.py"), BUNDLE], timeout=900)
        with open(os.path.join(OUT, "train_check.log"), "w") as f:
            f.write(log)
        for line in log.splitlines():
            if line.startswith("PASS ") or line.startswith("FAIL "):
                name, _, detail = line[5:].partition(": ")
                check(name, line.startswith("PASS"), detail)
        check("train checks ran", rc in (0, 1) and "train checks:" in log, f"{secs:.0f}s" if "train checks:" in log else tail(log))

    # the CUDA AdamW against its host twin (the update rule CI tests), determinism
    if "--skip-train" not in sys.argv:
        harness("adamw_test", f"{REPO}/tests/gpu/adamw_test.cu", f"{REPO}/runtime/src/adamw.cu {REPO}/runtime/src/adamw_host.cpp -I{REPO}/runtime/include -I{REPO}/runtime/src")

    # the backward kernels' own harnesses (float64 references, determinism)
    for name in ("attention_bwd_test", "ssm_bwd_test", "matmul_test", "train_ops_test"):
        src = f"{REPO}/tests/gpu/{name}.cu"
        if os.path.exists(src) and "--bwd-harnesses" in sys.argv:
            harness(name, src)

    # the GPU sampler against the exact distribution (chi-square), greedy, determinism
    harness("sampling_test", f"{REPO}/tests/gpu/sampling_test.cu", f"{REPO}/runtime/src/sampling.cu -I{REPO}/runtime/include -I{REPO}/runtime/src")

    # 4. the 8B hybrid
    for p in projects:
        if p["kind"] != "big" or not built[p["name"]]:
            continue
        T = p["seq"]
        toks = np.random.default_rng(bundle["seed"]).integers(0, p["vocab"], size=(1, T), dtype=np.int32)
        tok_path = os.path.join(OUT, "big-tokens.npy")
        np.save(tok_path, toks)
        out = os.path.join("/tmp", f"{p['name']}-logits.npy")
        cmd = [os.path.join(p["dir"], "bin", "model"), "forward", "--seed", "1", "--tokens", tok_path, "--out", out]
        rc, log, secs = sh(cmd, timeout=500, env={**os.environ, "STRATA_TIME": "1"})
        if rc != 0:
            check(f"{p['name']} forward at T={T}", False, tail(log))
            continue
        got = np.load(out, mmap_mode="r")
        finite = bool(np.isfinite(got[0, -16:]).all() and np.isfinite(got[0, :16]).all())
        m = re.search(r"forward time \(kernels only[^:]*: ([0-9.]+) ms", log)
        rate = ""
        if m and p.get("forwardFlops"):
            tf = p["forwardFlops"] / (float(m.group(1)) * 1e-3) / 1e12
            rate = f"{tf:.0f} TFLOP/s = {tf / BF16_PEAK_TFLOPS:.2f} of the {BF16_PEAK_TFLOPS:.0f} TFLOP/s bf16 roofline, "
        check(f"{p['name']} forward at T={T} (initialised weights)", finite and got.shape == (1, T, p["vocab"]),
              f"finite={finite}, {('forward ' + m.group(1) + ' ms, ') if m else ''}{rate}whole run {secs:.0f}s")
        print(tail(log, 6), flush=True)
        # where the forward's time goes: every launch timed once more (STRATA_PROFILE), by kernel and family
        prof = os.path.join(OUT, f"profile-{p['name']}-forward.csv")
        rc, log, _ = sh(cmd, timeout=500, env={**os.environ, "STRATA_PROFILE": prof})
        if rc == 0 and os.path.exists(prof):
            print_profile(prof, "forward", 12)

    # 4b. generation benchmarks: decode against the HBM roofline, hybrid vs Transformer, HF peers
    if "--skip-decode" not in sys.argv and any(p["kind"] in ("big", "serving") and built.get(p["name"]) for p in projects):
        rc, log, secs = sh([sys.executable, os.path.join(HERE, "decode_bench.py"), BUNDLE], timeout=900)
        with open(os.path.join(OUT, "decode_bench.log"), "w") as f:
            f.write(log)
        print(log, flush=True)
        check("generation benchmarks ran", rc == 0, f"{secs:.0f}s" if rc == 0 else tail(log))

    # 4c. training throughput: the ~0.85B hybrid against the same model in PyTorch (eager, compile)
    if "--train-bench" in sys.argv:
        first = True
        for p in projects:
            if p["kind"] != "trainbench" or not built.get(p["name"]):
                continue
            # a second training project (a variant of the first, STRATA_AB when making the
            # bundle) runs without the PyTorch peers, its log and profile under its name
            suffix = "" if first else "-" + p["name"]
            peers = os.environ.get("STRATA_TRAIN_PEERS") if first else ""
            rc, log, secs = sh([sys.executable, os.path.join(HERE, "train_bench.py"), p["dir"], os.path.join(BUNDLE, "moby-train.tok"),
                                "--batch", str(p["batch"]), "--seq", str(p["seq"]), "--profile", "--profile-csv", f"profile-train{suffix}.csv",
                                *(["--peer", peers] if peers is not None else [])], timeout=900)
            first = False
            with open(os.path.join(OUT, f"train_bench{suffix}.log"), "w") as f:
                f.write(log)
            print(log, flush=True)
            check(f"training benchmark {p['name']} ran", rc == 0, f"{secs:.0f}s" if rc == 0 else tail(log))

    # 5. benchmarks against peers, in this run
    if "--skip-bench" not in sys.argv:
        benches()

    print("\n== benchmarks (same run; ratio = peer time / Strata time, > 1 means Strata is faster)")
    print(f"| {'kernel':<12} | {'shape':<34} | {'Strata ms':>9} | {'peer':<18} | {'peer ms':>8} | {'Strata rate':>14} | {'ratio':>6} |")
    print(f"|{'-'*14}|{'-'*36}|{'-'*11}|{'-'*20}|{'-'*10}|{'-'*16}|{'-'*8}|")
    for fam, shape, ms, peer, pms, rate, ratio in bench_rows:
        print(f"| {fam:<12} | {shape:<34} | {ms:>9.3f} | {peer:<18} | {pms:>8.3f} | {rate:>14} | {ratio:>6.3f} |")

    npass = sum(1 for _, ok, _ in results if ok)
    nfail = len(results) - npass
    print(f"\n{npass} passed, {nfail} failed")
    pack_outputs(npass, nfail)
    return 0 if nfail == 0 else 1


def pack_outputs(npass, nfail):
    """The lent GPU machine returns at most 8 files from $OUT, the first by name, and the suite
    writes dozens (logs, logits, profiles, checkpoints): write 0-summary.txt (every check, the
    benchmark table, the counts) and pack everything into 0-results.tgz; both sort first. The
    loose files stay (a log the caller is still writing, say $OUT/suite.log, is packed as it is)."""
    import tarfile
    with open(os.path.join(OUT, "0-summary.txt"), "w") as f:
        for name, ok, detail in results:
            f.write(f"{'PASS' if ok else 'FAIL'} {name}{' — ' + detail if detail else ''}\n")
        f.write("\n| kernel | shape | Strata ms | peer | peer ms | Strata rate | ratio |\n")
        for fam, shape, ms, peer, pms, rate, ratio in bench_rows:
            f.write(f"| {fam} | {shape} | {ms:.3f} | {peer} | {pms:.3f} | {rate} | {ratio:.3f} |\n")
        f.write(f"\n{npass} passed, {nfail} failed\n")
    skip = {"0-summary.txt", "0-results.tgz"}
    entries = sorted(e for e in os.listdir(OUT) if e not in skip)
    with tarfile.open(os.path.join(OUT, "0-results.tgz"), "w:gz") as tar:
        for e in entries:
            tar.add(os.path.join(OUT, e), arcname=e)
    print(f"packed {len(entries)} outputs into {os.path.join(OUT, '0-results.tgz')} (and 0-summary.txt)")


def harness(name, src, extra=""):
    exe = os.path.join("/tmp", name)
    rc, log, _ = sh(f"nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -I{REPO}/templates/include {src} {extra} -o {exe}")
    if rc != 0:
        check(f"{name} builds", False, tail(log))
        return None
    rc, log, _ = sh([exe], timeout=400)
    with open(os.path.join(OUT, f"{name}.log"), "w") as f:
        f.write(log)
    m = re.search(r"(\d+) passed, (\d+) failed", log)
    check(f"{name}: kernel checks vs reference", rc == 0 and m is not None and m.group(2) == "0", m.group(0) if m else tail(log))
    return log


def benches():
    print("\n== kernel harnesses (correctness + timing)", flush=True)
    log = harness("gemm_test", f"{REPO}/tests/gpu/gemm_test.cu", "-lcublas")
    if log:
        # the two tiles the code generator's wave model chooses between (compiler/kernels/tiles.ts):
        # the ping-pong PpConfig<128,128,6> and the warp-specialized WsConfig<128,256,4>
        for m in re.finditer(r"\|\s*(\d+)x\s*(\d+)x\s*(\d+) \| (pp128x128s6|ws128x256s4)\s*\|\s*([0-9.]+) \|\s*([0-9.]+) \|\s*([0-9.]+) \|\s*[0-9.]+ \|\s*([0-9.]+) \|", log):
            M, N, K, cfg, ours, cub, tf, ratio = m.groups()
            bench_rows.append(("gemm", f"{M}x{N}x{K} ({cfg})", float(ours), "cuBLAS", float(cub), f"{float(tf):.0f} TFLOP/s", float(ratio)))
        # the fused bias + residual epilogue against cuBLAS followed by the same epilogue pass
        # (pp128x128s6e: the ping-pong tiles with the staged epilogue the code generator takes for
        # residual-add GEMMs on them; the two older forms for comparison)
        for m in re.finditer(r"\|\s*(\d+)x\s*(\d+)x\s*(\d+) \| (pp128x128s6e|pp128x128s6|ws128x256s4)\+epi\s*\|\s*([0-9.]+) \|\s*([0-9.]+) \|\s*([0-9.]+) \|", log):
            M, N, K, cfg, ours, peer, ratio = m.groups()
            tf = 2.0 * int(M) * int(N) * int(K) / float(ours) * 1e-9
            bench_rows.append(("gemm+epi", f"{M}x{N}x{K} ({cfg})", float(ours), "cuBLAS + epilogue", float(peer), f"{tf:.0f} TFLOP/s", float(ratio)))
    log = harness("attention_test", f"{REPO}/tests/gpu/attention_test.cu")
    if log:
        rc, pylog, _ = sh([sys.executable, f"{REPO}/tests/gpu/attention_bench.py"], timeout=300)
        ours = {m.group(1): (float(m.group(2)), m.group(3)) for m in re.finditer(r"BENCH (\S+) strata-default ms ([0-9.]+) TFLOP/s ([0-9.]+)", log)}
        for m in re.finditer(r"BENCH (\S+) (torch-sdpa\S*) ms ([0-9.]+)", pylog):
            cfg, impl, pms = m.group(1), m.group(2), float(m.group(3))
            if cfg in ours and impl in ("torch-sdpa", "torch-sdpa-flash"):
                ms, tf = ours[cfg]
                bench_rows.append(("attention", cfg, ms, impl, pms, f"{tf} TFLOP/s", pms / ms))
        with open(os.path.join(OUT, "attention_bench.log"), "w") as f:
            f.write(pylog)
    # the TMA / mbarrier wrappers of include/strata/ (for the Hopper kernels to come): layouts, fills, phases
    harness("tma_test", f"{REPO}/tests/gpu/tma_test.cu")
    log = harness("ssm_test", f"{REPO}/tests/gpu/ssm_test.cu")
    if log:
        rc, pylog, _ = sh([sys.executable, f"{REPO}/tests/gpu/ssm_bench.py"], timeout=400)
        with open(os.path.join(OUT, "ssm_bench.log"), "w") as f:
            f.write(pylog)
        ssd = re.search(r"TIME ssd_chunked B=2 T=8192 \S+ \S+ \S+ \S+ L=128 split=1 : ([0-9.]+) ms \((\d+) TFLOP", log)
        ssd_t = re.search(r"TORCH ssd_minimal einsum (\S+) B=2 T=8192 .*: ([0-9.]+) ms", pylog)
        if ssd and ssd_t:
            bench_rows.append(("ssd", "B2 T8192 H128 P64 G8 N128 L128", float(ssd.group(1)), f"torch einsum {ssd_t.group(1)}", float(ssd_t.group(2)), f"{ssd.group(2)} TFLOP/s", float(ssd_t.group(2)) / float(ssd.group(1))))
        sc = re.search(r"TIME selective_scan B=1 T=4096 D=8192 N=128 \(gate z, hT out\): ([0-9.]+) ms \(([0-9.]+) G", log)
        sc_t = re.search(r"TORCH selective_scan loop over T B=1 T=4096 D=8192 N=128: ([0-9.]+) ms", pylog)
        if sc and sc_t:
            bench_rows.append(("mamba1 scan", "B1 T4096 D8192 N128", float(sc.group(1)), "torch loop over T", float(sc_t.group(1)), f"{sc.group(2)} Gupd/s", float(sc_t.group(1)) / float(sc.group(1))))
        cv = re.search(r"TIME causal_conv1d K=4 B=2 T=8192 C=18432 silu \(strided in\): ([0-9.]+) ms \((\d+) GB/s", log)
        cv_t = re.search(r"TORCH causal conv1d .*: ([0-9.]+) ms", pylog)
        if cv and cv_t:
            bench_rows.append(("conv1d", "K4 B2 T8192 C18432 +silu", float(cv.group(1)), "torch F.conv1d", float(cv_t.group(1)), f"{int(cv.group(2))/1000:.2f} TB/s", float(cv_t.group(1)) / float(cv.group(1))))


if __name__ == "__main__":
    sys.exit(main())
