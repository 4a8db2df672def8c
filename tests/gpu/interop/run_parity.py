#!/usr/bin/env python3
"""GPU parity, step 3 (on the GPU machine, inside the bundle that bundle.sh made).

For every imported model: build the Strata project with make, run its forward on the saved tokens
with the imported weights, and compare the logits with transformers' float32 logits (relative
error over everything, and the worst token). Then load each export-hf folder back into
transformers and compare its float32 logits with the same reference.

    python3 run_parity.py BUNDLE_DIR [LOG_FILE]
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

# tests/gpu/run_suite.py's TOLERANCE for bf16 logits (docs/DESIGN.md, Numerics)
TOL_BF16 = 2e-2
# an exported checkpoint holds the same bf16 weights: transformers' float32 logits must agree
TOL_EXPORT = 1e-4


def rel_errors(out, ref):
    out, ref = out.astype(np.float64), ref.astype(np.float64)
    glob = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
    per_tok = np.linalg.norm(out - ref, axis=-1) / np.linalg.norm(ref, axis=-1)
    b, t = np.unravel_index(np.argmax(per_tok), per_tok.shape)
    agree = float((out.argmax(-1) == ref.argmax(-1)).mean())
    return glob, float(per_tok[b, t]), (int(b), int(t)), agree


def main():
    bundle = os.path.abspath(sys.argv[1])
    rows, passed, failed = [], 0, 0
    lines = []

    def say(s):
        print(s, flush=True)
        lines.append(s)

    for m in ["nemotron_h", "mamba2", "mamba", "llama", "megatron_hybrid"]:
        d = os.path.join(bundle, m)
        if not os.path.isdir(d):
            continue
        ref = np.load(os.path.join(d, "ref_logits_f32.npy"))
        # "project" is compiled by the Strata checkout bundle.sh ran; "project-<tag>" by others (optional)
        for proj in sorted(p for p in os.listdir(d) if p.startswith("project")):
            label = m if proj == "project" else f"{m} [{proj[len('project-'):]}]"
            try:
                t0 = time.time()
                b = subprocess.run(["make", "-C", os.path.join(d, proj), f"-j{os.cpu_count() or 8}"], capture_output=True, text=True)
                if b.returncode:
                    raise RuntimeError("make failed:\n" + (b.stdout + b.stderr)[-3000:])
                out_path = os.path.join(d, f"logits-{proj}.npy")
                r = subprocess.run([os.path.join(d, proj, "bin", "model"), "forward", "--weights", os.path.join(d, "weights.safetensors"),
                                    "--tokens", os.path.join(d, "tokens.npy"), "--out", out_path], capture_output=True, text=True)
                if r.returncode:
                    raise RuntimeError("forward failed:\n" + (r.stdout + r.stderr)[-3000:])
                out = np.load(out_path)
                if out.shape != ref.shape:
                    raise RuntimeError(f"logits shape {out.shape} vs reference {ref.shape}")
                g, w, (bb, tt), agree = rel_errors(out, ref)
                ok = bool(g <= TOL_BF16 and w <= 2 * TOL_BF16 and np.isfinite(out).all())
                passed += ok
                failed += not ok
                rows.append((label, "strata bf16 vs transformers f32", g, w, f"b{bb} t{tt}", agree, ok))
                say(f"{'PASS' if ok else 'FAIL'} {label}: strata vs transformers rel err {g:.3e} (worst token {w:.3e} at batch {bb}, position {tt}; argmax agreement {agree:.3f}) — {time.time() - t0:.1f}s")
            except Exception as e:
                failed += 1
                rows.append((label, "strata bf16 vs transformers f32", float("nan"), float("nan"), "-", float("nan"), False))
                say(f"FAIL {label}: {e}")
        exp = os.path.join(d, "exported")
        if os.path.isdir(exp):
            try:
                import torch
                from transformers import AutoModelForCausalLM
                tok = torch.from_numpy(np.load(os.path.join(d, "tokens.npy")).astype(np.int64)).cuda()
                model = AutoModelForCausalLM.from_pretrained(exp, dtype=torch.float32).cuda().eval()
                with torch.no_grad():
                    out = model(input_ids=tok).logits.float().cpu().numpy()
                g, w, (bb, tt), agree = rel_errors(out, ref)
                ok = g <= TOL_EXPORT
                passed += ok
                failed += not ok
                rows.append((m, f"export-hf → {type(model).__name__} f32", g, w, f"b{bb} t{tt}", agree, ok))
                say(f"{'PASS' if ok else 'FAIL'} {m}: export-hf loads as {type(model).__name__}, rel err {g:.3e} vs the original (worst token {w:.3e})")
                # greedy generation: 32 tokens from the first 16 of sequence 0, Strata (bin/model
                # generate, bf16) vs transformers (float32) on the same weights; a divergence counts
                # only where transformers' own top two logits are a near-tie (bf16 cannot order them)
                binary = os.path.join(d, "project", "bin", "model")
                if os.path.exists(binary):
                    prompt = tok[:1, :16]
                    with torch.no_grad():
                        hf = model.generate(prompt, max_new_tokens=32, min_new_tokens=32, do_sample=False, output_scores=True, return_dict_in_generate=True, pad_token_id=0)
                    hf_toks = hf.sequences[0, 16:].tolist()
                    r = subprocess.run([binary, "generate", "--prompt", ",".join(str(int(x)) for x in prompt[0].tolist()), "--max-new", "32",
                                        "--weights", os.path.join(d, "weights.safetensors"), "--quiet", "--out", os.path.join(d, "greedy.npy")], capture_output=True, text=True)
                    if r.returncode:
                        raise RuntimeError("generate failed:\n" + (r.stdout + r.stderr)[-2000:])
                    ours = np.load(os.path.join(d, "greedy.npy"))[0].tolist()
                    same = next((i for i, (a, b) in enumerate(zip(ours, hf_toks)) if a != b), 32)
                    if same < 32:
                        sc = hf.scores[same][0].float()
                        top2 = torch.topk(sc, 2).values
                        near = float(top2[0] - top2[1]) <= 0.02 * float(sc.std())
                    else:
                        near = True
                    ok = same == 32 or near
                    passed += ok
                    failed += not ok
                    note = "all 32 equal" if same == 32 else f"first difference at step {same} ({'a near-tie in transformers' if near else 'not a tie'})"
                    rows.append((m, "greedy 32 tokens vs transformers generate", float("nan"), float("nan"), note, same / 32, ok))
                    say(f"{'PASS' if ok else 'FAIL'} {m}: greedy generation, {note}")
            except Exception as e:
                failed += 1
                rows.append((m, "export-hf", float("nan"), float("nan"), "-", float("nan"), False))
                say(f"FAIL {m} export-hf: {e!r}")

    say("")
    say("| model | comparison | rel err (global) | worst token | where | argmax agree | result |")
    say("| --- | --- | --- | --- | --- | --- | --- |")
    for m, what, g, w, where, agree, ok in rows:
        say(f"| {m} | {what} | {g:.3e} | {w:.3e} | {where} | {agree:.3f} | {'pass' if ok else 'FAIL'} |")
    say(f"\n{passed} passed, {failed} failed")
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            f.write("\n".join(lines) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
