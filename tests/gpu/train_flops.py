#!/usr/bin/env python3
"""Training FLOPs per token and MFU: the one formula both sides of the training benchmark use.

    training FLOPs / token = 6 · matmul params + attention + SSD            (forward 1×, backward 2×)

- **matmul params**: every weight except the input embedding table (a lookup does no FLOPs);
  an untied LM head counts, a tied one counts once (as the head). Norm weights, biases, conv
  taps, A_log / D / dt_bias are in it too (they are < 0.1 % of a model; counting them keeps
  "6 · params" literal). Each such weight costs 2 FLOPs per token forward (one multiply-add)
  and 4 backward (dgrad + wgrad): 6 in all.
- **attention** (causal, per attention layer, per token at sequence length T): the score
  product Q·Kᵀ and the value product P·V each cost 2 · heads · headDim FLOPs per visible key;
  a causal query sees (T + 1)/2 keys on average, so forward = 4 · heads · headDim · (T + 1)/2,
  training = 3 × that. (GQA shares K/V between heads but not the products: heads, not kvHeads.)
- **SSD** (Mamba-2's chunked scan, per Mamba-2 layer, per token, chunk L, heads H, headDim P,
  state N, groups G): intra-chunk C·Bᵀ per group, causal within the chunk: 2·G·N·(L + 1)/2;
  the masked scores times X per head: 2·H·P·(L + 1)/2; the chunk states Bᵀ·X and the
  state read-out C·h per head: 2·H·P·N each. Forward = G·N·(L+1) + H·P·(L+1) + 4·H·P·N,
  training = 3 × that. The inter-chunk state passing (H·P·N per chunk) is < 1/L of the
  state terms and left out.
- **selective scan** (Mamba-1, per layer, per token): h = exp(Δ·A)·h + Δ·B·x and y = C·h are
  about 6 FLOPs per (channel, state) forward: 6 · d_inner · N, training = 3 × that.

Elementwise work (activations, norms, softmax exp, conv) is not counted: MFU measures the useful
dense math, as PaLM's and Megatron's MFU do. Recomputation in the backward is not counted either.
At d_model 2048 / T 4096 the result matches `strata info`'s forward FLOPs from the IR (1.63
GFLOP/token for the ~0.85B hybrid) to < 1 %.

MFU = tokens/s · FLOPs/token / peak; the peak for an H100/H200 SXM is 989 TFLOP/s dense bf16.

The model is described the way a compiled project's manifest.json describes it: ``vocab``,
``d_model``, ``tied``, ``norm`` (rmsnorm, or a LayerNorm with a bias), and ``blocks``, one dict per layer with ``kind`` (mamba2 / mamba /
attention / mlp) and that layer's options (``heads``, ``kvHeads``, ``headDim``, ``expand``,
``dState``, ``groups``, ``chunk``, ``hidden``, ``act``). ``spec_from_manifest`` reads one.

    from train_flops import spec_from_manifest, train_flops_per_token, mfu
    f = train_flops_per_token(spec_from_manifest(json.load(open("build/X/manifest.json"))), seq=4096)
    print(f["total"], mfu(tokens_per_s, f["total"]))
"""
import math

H100_BF16_DENSE = 989e12


def _mamba2_sizes(b, d_model):
    d_inner = int(b.get("expand", 2) * d_model)
    P = b.get("headDim", 64)
    H = b.get("heads") or d_inner // P
    return d_inner, H, P, b.get("groups", 1), b.get("dState", 128), b.get("chunk", 128), b.get("dConv", 4)


def block_params(b, d_model, norm_kind="rmsnorm"):
    """Parameters of one layer (its pre-norm included), as Strata's DSL lays them out."""
    kind = b["kind"]
    norm = d_model if norm_kind == "rmsnorm" else 2 * d_model  # LayerNorm has a bias
    if kind == "mamba2":
        d_inner, H, P, G, N, _, K = _mamba2_sizes(b, d_model)
        conv = d_inner + 2 * G * N
        return norm + d_model * (2 * d_inner + 2 * G * N + H) + conv * K + conv + 3 * H + d_inner + d_inner * d_model
    if kind == "mamba":
        d_inner = int(b.get("expand", 2) * d_model)
        N = b.get("dState", 16)
        R = b.get("dtRank", "auto")
        R = math.ceil(d_model / 16) if R == "auto" else R
        K = b.get("dConv", 4)
        return norm + d_model * 2 * d_inner + d_inner * K + d_inner + d_inner * (R + 2 * N) + R * d_inner + d_inner + d_inner * N + d_inner + d_inner * d_model
    if kind == "attention":
        hd = b.get("headDim") or d_model // b["heads"]
        kv = b.get("kvHeads") or b["heads"]
        return norm + d_model * (b["heads"] + 2 * kv) * hd + b["heads"] * hd * d_model
    if kind == "mlp":
        up = 2 * b["hidden"] if b.get("act") == "swiglu" else b["hidden"]
        return norm + d_model * up + b["hidden"] * d_model
    raise ValueError(f"train_flops: unknown layer kind {kind!r}")


def count_params(spec):
    """All parameters: embedding, layers, final norm, LM head (unless tied)."""
    d, V = spec["d_model"], spec["vocab"]
    nk = spec.get("norm", "rmsnorm")
    n = V * d + sum(block_params(b, d, nk) for b in spec["blocks"]) + (d if nk == "rmsnorm" else 2 * d)
    return n + (0 if spec.get("tied") else V * d)


def train_flops_per_token(spec, seq, params=None):
    """Training FLOPs per token at sequence length `seq` (forward + backward), by term.

    `params` overrides the parameter count (e.g. the exact sum of a model's tensors); the input
    embedding (vocab · d_model) is subtracted from it unless the embedding is tied to the head.
    Returns {"params", "matmul_params", "dense", "attention", "ssd", "scan", "total"}."""
    d, V = spec["d_model"], spec["vocab"]
    n = count_params(spec) if params is None else params
    matmul = n if spec.get("tied") else n - V * d
    attn = ssd = scan = 0.0
    for b in spec["blocks"]:
        if b["kind"] == "attention":
            hd = b.get("headDim") or d // b["heads"]
            attn += 3 * 4 * b["heads"] * hd * (seq + 1) / 2
        elif b["kind"] == "mamba2":
            _, H, P, G, N, L, _ = _mamba2_sizes(b, d)
            L = min(L, seq)
            ssd += 3 * (G * N * (L + 1) + H * P * (L + 1) + 4 * H * P * N)
        elif b["kind"] == "mamba":
            scan += 3 * 6 * int(b.get("expand", 2) * d) * b.get("dState", 16)
    dense = 6 * matmul
    return {"params": n, "matmul_params": matmul, "dense": dense, "attention": attn, "ssd": ssd, "scan": scan, "total": dense + attn + ssd + scan}


def mfu(tokens_per_s, flops_per_token, peak=H100_BF16_DENSE):
    return tokens_per_s * flops_per_token / peak


def spec_from_manifest(m):
    """The spec above from a compiled project's manifest.json (config + blocks)."""
    c = m["config"]
    return {"vocab": c["vocab"], "d_model": c["dModel"], "tied": bool(c.get("tiedEmbeddings", False)), "norm": c.get("norm", "rmsnorm"), "blocks": m["blocks"]}


if __name__ == "__main__":
    import json
    import sys

    if len(sys.argv) < 2:
        sys.exit("usage: train_flops.py PROJECT/manifest.json [SEQ]")
    with open(sys.argv[1]) as f:
        man = json.load(f)
    s = int(sys.argv[2]) if len(sys.argv) > 2 else man["config"]["seqLen"]
    print(json.dumps(train_flops_per_token(spec_from_manifest(man), s)))
