#!/usr/bin/env python3
"""Generation benchmarks on the GPU machine (no Node): decode tokens/s against the HBM roofline
measured in the same run, the 8B Mamba-2-Hybrid vs the 8B Transformer at 4K-128K contexts (the
paper's "up to 8x faster generation"), time to first token, and tiny models against HF
transformers' generate on the same weights.

  python3 tests/gpu/decode_bench.py BUNDLE_DIR        (prints tables; writes $OUT/decode_bench.json)
  python3 tests/gpu/decode_bench.py BUNDLE_DIR --batches 1 --no-paper --no-tiny --profile
                                                      (per-launch times of the decode step)
  STRATA_PDL=0 python3 tests/gpu/decode_bench.py ...  (kernels launched without programmatic
                                                      dependent launch, for the A/B ratio)

Method. Weights are initialised from a seed (values do not change the work). Decode throughput
at context c: a state for B sequences sized for c tokens, a short real prefill, then
strata_state_set_position(c - 40) declares the caches full up to there (their contents are
whatever they hold: the work of a step depends on the position, not on the values), and a
greedy generate continues for 33 tokens: 32 decode steps timed on the host, sampling on the GPU
included. Batch: the given ones, or the largest that fits in free memory (capped by the compiled
--max-batch). Roofline per step: (weight bytes + B * (SSM/conv state read + written + KV cache
read at c + one KV row written)) / the device-to-device copy bandwidth of a 4 GiB torch copy in
this run.
"""
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import entries  # noqa: E402
from profile_table import print_profile  # noqa: E402

OUT = os.environ.get("OUT", "/tmp/strata-gpu-out")


def copy_bandwidth():
    import torch
    n = 4 << 30
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        b.copy_(a)
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / 10
    del a, b
    torch.cuda.empty_cache()
    return 2 * n / dt  # bytes read + written per second


def free_bytes():
    import torch
    return torch.cuda.mem_get_info()[0]


def state_bytes(manifest, context):
    fixed = sum(s["bytesPerSeq"] for s in manifest["states"] if not s.get("bytesPerToken"))
    per_tok = sum(s.get("bytesPerToken", 0) for s in manifest["states"])
    return fixed, per_tok, fixed + per_tok * context


# decode steps run on a state before the timed ones: more than two batches of decode ahead (16), so
# that the state's CUDA graphs (one step, and STRATA_DECODE_GRAPH_STEPS steps) are captured
WARM_STEPS = 40


def decode_at(m, manifest, context, batch, steps=32):
    """Tokens/s over all sequences for `steps` decode steps at `context`."""
    s = m.state(batch, context)
    try:
        prompt = np.random.default_rng(0).integers(0, m.vocab, size=(batch, 8), dtype=np.int32)
        m.generate(s, prompt, 1)  # real prefill of 8 tokens
        # warm-up steps on this state: its one-step and multi-step decode graphs are captured here,
        # once per state (runtime/README.md), not in the timed steps
        m.generate(s, prompt[:, :1], WARM_STEPS + 1, cont=True)
        m.lib.strata_state_set_position(s, context - steps - 8)
        toks, lens, st = m.generate(s, prompt[:, :1], steps + 1, cont=True)
        assert st.steps == steps, st.steps
        return batch * steps / (st.decode_ms * 1e-3), st.decode_ms / steps
    finally:
        m.lib.strata_state_destroy(s)


def roofline_tps(manifest, weight_bytes, context, batch, bw):
    fixed, per_tok, _ = state_bytes(manifest, context)
    step_bytes = weight_bytes + batch * (2 * fixed + per_tok * context + per_tok)
    return batch / (step_bytes / bw), step_bytes


def parse_args():
    import argparse
    ap = argparse.ArgumentParser(description="decode benchmarks (see the module docstring)")
    ap.add_argument("bundle", nargs="?", default=".gpu-bundle")
    ap.add_argument("--batches", default="1,8,64", help="decode batches at context 4096 (comma-separated)")
    ap.add_argument("--no-paper", action="store_true", help="skip the largest-batch contexts and the time to first token")
    ap.add_argument("--no-tiny", action="store_true", help="skip the tiny models against HF transformers")
    ap.add_argument("--only", default="", help="only these projects (comma-separated names)")
    ap.add_argument("--profile", action="store_true",
                    help="time every launch of the big models (STRATA_PROFILE; eager steps, no graphs): "
                         "$OUT/profile-NAME.csv, and print the kernels that take the most time")
    ap.add_argument("--json", default="decode_bench.json", help="file name under $OUT")
    return ap.parse_args()


def main():
    args = parse_args()
    bundle = os.path.abspath(args.bundle)
    batches = [int(b) for b in args.batches.split(",") if b]
    only = set(x for x in args.only.split(",") if x)
    with open(os.path.join(bundle, "bundle.json")) as f:
        meta = json.load(f)
    bw = copy_bandwidth()
    print(f"device-to-device copy bandwidth (this run): {bw / 1e12:.2f} TB/s", flush=True)
    rows, paper, ttft, tiny = [], [], [], []
    for p in meta["projects"]:
        if p["kind"] not in ("big", "serving") or (only and p["name"] not in only):
            continue
        d = os.path.join(bundle, p["name"])
        if not os.path.exists(os.path.join(d, "lib", "libmodel.so")):
            print(f"skip {p['name']}: not built", flush=True)
            continue
        manifest = json.load(open(os.path.join(d, "manifest.json")))
        wbytes = sum(w["bytes"] for w in manifest["weights"])
        t0 = time.time()
        prof_path = os.path.join(OUT, f"profile-{p['name']}.csv")
        if args.profile:
            os.makedirs(OUT, exist_ok=True)
            os.environ["STRATA_PROFILE"] = prof_path  # read when the model is created
        m = entries.Model(d, None, seed=1)
        os.environ.pop("STRATA_PROFILE", None)
        m.vocab = manifest["vocabSize"]
        print(f"{p['name']}: weights initialised in {time.time() - t0:.0f}s", flush=True)
        try:
            for B in batches:
                if B > manifest["maxBatch"]:
                    continue
                if B * state_bytes(manifest, 4096)[2] > free_bytes() - (8 << 30):
                    rows.append({"model": p["name"], "batch": B, "context": 4096, "fits": False})
                    print(f"  decode B={B} ctx 4096: the state does not fit in memory", flush=True)
                    continue
                tps, ms = decode_at(m, manifest, 4096, B)
                roof, _ = roofline_tps(manifest, wbytes, 4096, B, bw)
                rows.append({"model": p["name"], "batch": B, "context": 4096, "tokPerS": tps, "msPerStep": ms, "rooflineTokPerS": roof, "fraction": tps / roof})
                print(f"  decode B={B} ctx 4096: {tps:.0f} tok/s ({ms:.2f} ms/step), roofline {roof:.0f} tok/s, {tps / roof:.2f}", flush=True)
            for ctx in (4096, 16384, 32768, 131072):
                if args.no_paper or args.profile:
                    break
                if ctx > manifest["maxContext"]:
                    continue
                _, _, per_seq = state_bytes(manifest, ctx)
                B = int(min(manifest["maxBatch"], (free_bytes() - (8 << 30)) // per_seq))
                if B < 1:
                    paper.append({"model": p["name"], "context": ctx, "batch": 0})
                    continue
                tps, ms = decode_at(m, manifest, ctx, B)
                roof, _ = roofline_tps(manifest, wbytes, ctx, B, bw)
                paper.append({"model": p["name"], "context": ctx, "batch": B, "tokPerS": tps, "msPerStep": ms, "rooflineTokPerS": roof, "fraction": tps / roof})
                print(f"  ctx {ctx}: largest batch {B}: {tps:.0f} tok/s ({ms:.2f} ms/step), roofline {roof:.0f}", flush=True)
            for ctx in (4096, 16384):
                if args.no_paper or args.profile:
                    break
                s = m.state(1, ctx)
                prompt = np.random.default_rng(1).integers(0, m.vocab, size=(1, ctx - 1), dtype=np.int32)
                _, _, st = m.generate(s, prompt, 1)
                m.lib.strata_state_destroy(s)
                ttft.append({"model": p["name"], "context": ctx, "ttftMs": st.prefill_ms})
                print(f"  time to first token, prompt {ctx - 1}: {st.prefill_ms:.0f} ms", flush=True)
        finally:
            m.close()  # writes the profile
        if args.profile and os.path.exists(prof_path):
            print_profile(prof_path)

    # tiny models against HF transformers' generate on the same weights (bf16, batch 1, 64 new tokens)
    for p in meta["projects"]:
        hf = os.path.join(bundle, p["name"], "hf")
        if p["kind"] != "golden" or not os.path.isdir(hf) or args.no_tiny or (only and p["name"] not in only):
            continue
        d = os.path.join(bundle, p["name"])
        m = entries.Model(d, os.path.join(d, "weights.safetensors"))
        m.vocab = p["vocab"]
        prompt = np.load(os.path.join(d, "tokens.npy"))[:1, :32]
        s = m.state(1, 128)
        m.generate(s, prompt, WARM_STEPS)  # warm: the state's decode graphs are captured here
        toks, lens, st = m.generate(s, prompt, 64)
        ours = 63 / (st.decode_ms * 1e-3)
        m.lib.strata_state_destroy(s)
        m.close()
        row = {"model": p["name"], "strataTokPerS": ours}
        try:
            import torch
            from transformers import AutoModelForCausalLM
            hm = AutoModelForCausalLM.from_pretrained(hf, torch_dtype=torch.bfloat16).cuda().eval()
            x = torch.tensor(prompt, device="cuda", dtype=torch.long)
            kw = dict(max_new_tokens=64, min_new_tokens=64, do_sample=False, pad_token_id=0)
            with torch.no_grad():
                try:
                    hm.generate(x, **kw)
                except ValueError as e:
                    # transformers 5.x: a model whose cache holds no attention layer (Mamba-2 alone)
                    # fails in generate ("`get_seq_length` can only be called on Attention layers");
                    # the peer then recomputes the prefix every step — slower than a cached generate
                    # would be (H200, 2026-11-30: 118 tok/s vs 324 for the tiny Mamba-1's cached
                    # one), so its ratio is labelled and is not comparable with the others'.
                    if "get_seq_length" not in str(e):
                        raise
                    kw["use_cache"] = False
                    row["hfNote"] = "HF generate with use_cache=False (its cache cannot hold a model without attention layers): a slower peer, ratio not comparable"
                    hm.generate(x, **kw)
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                hm.generate(x, **kw)
                torch.cuda.synchronize()
            hf_tps = 64 / (time.perf_counter() - t0)
            row.update(hfTokPerS=hf_tps, ratio=ours / hf_tps)
            del hm
            torch.cuda.empty_cache()
        except Exception as e:
            row["hfError"] = f"{type(e).__name__}: {str(e)[:200]}"
        tiny.append(row)
        print(f"  {p['name']}: Strata {ours:.0f} tok/s" + (f", HF generate {row['hfTokPerS']:.0f} tok/s, ratio {row['ratio']:.0f}" if "ratio" in row else f", HF: {row.get('hfError')}")
              + (f" ({row['hfNote']})" if "hfNote" in row else ""), flush=True)

    print("\n== decode (batch 1/8/64 at context 4096; roofline = bytes per step / copy bandwidth of this run)")
    print("| model | batch | tok/s | ms/step | roofline tok/s | fraction |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r.get("fits") is False:
            print(f"| {r['model']} | {r['batch']} | state does not fit | | | |")
            continue
        print(f"| {r['model']} | {r['batch']} | {r['tokPerS']:.0f} | {r['msPerStep']:.2f} | {r['rooflineTokPerS']:.0f} | {r['fraction']:.2f} |")
    print("\n== the paper's comparison: generation throughput at the largest batch that fits")
    print("| context | hybrid batch | hybrid tok/s | transformer batch | transformer tok/s | speed-up (paper: up to 8x) |")
    print("|---|---|---|---|---|---|")
    for ctx in (4096, 16384, 32768, 131072):
        h = next((r for r in paper if r["context"] == ctx and "hybrid" in r["model"]), None)
        t = next((r for r in paper if r["context"] == ctx and "transformer" in r["model"]), None)
        if not h and not t:
            continue
        fmt = lambda r: (f"{r['batch']}", f"{r['tokPerS']:.0f}") if r and r.get("batch") else ("-", "-")
        sp = f"{h['tokPerS'] / t['tokPerS']:.2f}x" if h and t and h.get("batch") and t.get("batch") else "-"
        print(f"| {ctx} | {fmt(h)[0]} | {fmt(h)[1]} | {fmt(t)[0]} | {fmt(t)[1]} | {sp} |")
    print("\n== time to first token (batch 1)")
    for r in ttft:
        print(f"| {r['model']} | prompt {r['context'] - 1} | {r['ttftMs']:.0f} ms |")
    print("\n== tiny models: Strata generate vs HF transformers generate (bf16, batch 1, 64 tokens)")
    for r in tiny:
        print(f"| {r['model']} | {r['strataTokPerS']:.0f} | {r.get('hfTokPerS', float('nan')):.0f} | {r.get('ratio', float('nan')):.0f} | {r.get('hfError', r.get('hfNote', ''))} |")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, args.json), "w") as f:
        json.dump({"copyBandwidth": bw, "decode": rows, "paper": paper, "ttft": ttft, "tiny": tiny}, f, indent=1)


if __name__ == "__main__":
    main()
