#!/usr/bin/env python3
"""The PyTorch peer of Strata's training benchmark (issue 9, item 8).

The ~0.85B Mamba-2-Hybrid written in plain PyTorch, the way a researcher would write it without
Strata: d_model 2048, 24 layers allocated by Megatron-LM's hybrid algorithm at attention 0.08 /
MLP 0.5 (the same order Strata's `stack({layers, ratios})` gives: M-M-M--*M-M-M-M-*M--M-M-),
Mamba-2 (expand 2, head dim 64, 8 groups, state 128, conv 4, chunk 128), attention with 16 heads /
4 KV groups and no position embedding (SDPA, causal, GQA), MLP 8192 with exact GeLU (the paper's
hybrid: examples/lib/paper.ts), pre-norm RMSNorm, untied LM head, vocab 32000 — 850,009,984
parameters, the same tensors as Strata's layout.

Mamba-2's scan is a chunked SSD written here in torch: within a chunk the quadratic (attention-
like) form C·Bᵀ ⊙ decay · X; across chunks the chunk states Bᵀ·X passed on through the chunks'
total decays (a small causal matrix over chunks), then read out by C. Depthwise causal conv1d
through F.conv1d, gated RMSNorm per group (norm after the gate, as Megatron / mamba_ssm).

Training: fp32 master weights, bf16 autocast, torch.optim.AdamW(fused=True) with Megatron's 8B
recipe (β 0.9/0.95, weight decay 0.1 except A_log, D, dt_bias, norms and biases), global-norm
clipping at 1.0. Throughput on random tokens (the data do not change the work).

    python3 tests/gpu/train_peer.py --tiny                 # a small config, seconds: SSD check + loss falls
    python3 tests/gpu/train_peer.py                        # 0.85B, eager and torch.compile, batch 4 × 4096
    python3 tests/gpu/train_peer.py --modes eager --batch 2 --steps 5

Each configuration runs in its own process (a clean GPU; torch.compile is time-limited by
--compile-timeout and skipped with a message past it). One JSON object per configuration on
stdout, then a table. FLOPs per token: tests/gpu/train_flops.py (6·params + attention + SSD).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_flops import H100_BF16_DENSE, count_params, train_flops_per_token  # noqa: E402

BENCH = dict(vocab=32000, d_model=2048, layers=24, attention=0.08, mlp=0.5, hidden=8192, act="gelu", heads=16, kv_heads=4, head_dim=None, m_head_dim=64, groups=8, d_state=128, expand=2, d_conv=4, chunk=128, seq=4096, batch=4)
TINY = dict(vocab=512, d_model=256, layers=8, attention=0.125, mlp=0.5, hidden=1024, act="gelu", heads=4, kv_heads=2, head_dim=None, m_head_dim=64, groups=2, d_state=64, expand=2, d_conv=4, chunk=64, seq=256, batch=4)


def round_half_even(x):
    f = math.floor(x)
    d = x - f
    if d > 0.5:
        return f + 1
    if d < 0.5:
        return f
    return f if f % 2 == 0 else f + 1


def allocate_layers(n, attention, mlp):
    """Megatron-LM's hybrid allocation (compiler/dsl/model.ts allocateLayers): attention spread
    evenly between Mamba layers, then MLPs spread evenly over the remaining Mamba positions."""
    out = ["M"] * n
    a = round_half_even(n * attention)
    mc = n - a
    if a > 0:
        s = mc / (a + 1)
        x = s
        for i in range(n):
            if x < 0.5:
                out[i] = "*"
                x += s
            else:
                x -= 1
    k = round_half_even(n * mlp)
    if k > 0:
        mc -= k
        s = mc / k
        x = s
        for i in range(n):
            if out[i] != "M":
                continue
            if x < 0.5:
                out[i] = "-"
                x += s
            else:
                x -= 1
    return "".join(out)


def spec_of(cfg):
    """The model as train_flops.py describes it."""
    hd = cfg["head_dim"] or cfg["d_model"] // cfg["heads"]
    B = {
        "M": {"kind": "mamba2", "expand": cfg["expand"], "headDim": cfg["m_head_dim"], "groups": cfg["groups"], "dState": cfg["d_state"], "dConv": cfg["d_conv"], "chunk": cfg["chunk"]},
        "*": {"kind": "attention", "heads": cfg["heads"], "kvHeads": cfg["kv_heads"], "headDim": hd},
        "-": {"kind": "mlp", "hidden": cfg["hidden"], "act": cfg["act"]},
    }
    return {"vocab": cfg["vocab"], "d_model": cfg["d_model"], "tied": False, "norm": "rmsnorm", "blocks": [B[c] for c in allocate_layers(cfg["layers"], cfg["attention"], cfg["mlp"])]}


# --------------------------------------------------------------------------------- the model
def build_model(cfg, device):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def rmsnorm(x, w=None, eps=1e-5):
        xf = x.float()
        y = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
        return y if w is None else y * w.to(x.dtype)

    def segsum_exp(a):
        """a [..., n] → exp(segment sums) [..., n, n]: out[i, j] = exp(a[j+1] + … + a[i]) for i ≥ j, else 0."""
        n = a.shape[-1]
        c = torch.cumsum(a, dim=-1)
        diff = c[..., :, None] - c[..., None, :]
        mask = torch.ones(n, n, dtype=torch.bool, device=a.device).tril()
        return torch.exp(diff.masked_fill(~mask, float("-inf")))

    def ssd_chunked(x, dt, A, Bm, Cm, L):
        """Mamba-2's SSD, chunked. x [b,t,h,p], dt [b,t,h] fp32 (after softplus), A [h] (< 0),
        Bm, Cm [b,t,g,n]; t a multiple of L. Head i reads group i // (h/g). Returns y [b,t,h,p]
        (without the D skip). h_t = exp(dt_t·A)·h_{t−1} + dt_t·B_t ⊗ x_t,  y_t = C_t · h_t."""
        b, t, h, p = x.shape
        g, n = Bm.shape[2], Bm.shape[3]
        c, hg = t // L, h // g
        cd = x.dtype
        # [b, c, g, hg, L, ·]: one chunk of one head as a matrix
        X = x.reshape(b, c, L, g, hg, p).permute(0, 1, 3, 4, 2, 5)
        Bc = Bm.reshape(b, c, L, g, n).permute(0, 1, 3, 2, 4).unsqueeze(3)  # [b,c,g,1,L,n]
        Cc = Cm.reshape(b, c, L, g, n).permute(0, 1, 3, 2, 4).unsqueeze(3)
        dtc = dt.reshape(b, c, L, g, hg).permute(0, 1, 3, 4, 2)  # [b,c,g,hg,L] fp32
        a = dtc * A.reshape(g, hg, 1)
        acum = torch.cumsum(a, dim=-1)
        # 1. within each chunk: (C·Bᵀ ⊙ decay(l ← s) · dt_s) · X, causal
        CB = Cc @ Bc.transpose(-1, -2)  # [b,c,g,1,L,L], per group
        Lmat = segsum_exp(a)  # [b,c,g,hg,L,L]
        y = (CB * (Lmat * dtc.unsqueeze(-2)).to(cd)) @ X
        # 2. each chunk's own state: Σ_s decay(end ← s)·dt_s·B_s ⊗ x_s → [b,c,g,hg,n,p]
        w = (torch.exp(acum[..., -1:] - acum) * dtc).to(cd)
        states = Bc.transpose(-1, -2) @ (X * w.unsqueeze(-1))
        # 3. across chunks (fp32): the state entering chunk z = Σ_{c' < z} exp(last_{c'+1} + … + last_{z−1}) · states_{c'},
        # last_k = chunk k's total log-decay: row z of the chunk matrix is row z−1 of segsum_exp(last)
        last = acum[..., -1].permute(0, 2, 3, 1)  # [b,g,hg,c]
        Dz = F.pad(segsum_exp(last)[..., : c - 1, :], (0, 0, 1, 0))  # [b,g,hg,c,c], row 0 = 0
        S = states.float().permute(0, 2, 3, 1, 4, 5).reshape(b, g, hg, c, n * p)
        with torch.autocast("cuda", enabled=False):  # the state passing stays in fp32
            Sin = (Dz @ S).reshape(b, g, hg, c, n, p).permute(0, 3, 1, 2, 4, 5)  # [b,c,g,hg,n,p]
        # 4. read the entering state out within the chunk: exp(acum_l)·C_l · h_in
        y = y + (Cc @ Sin.to(cd)) * torch.exp(acum).unsqueeze(-1).to(cd)
        return y.permute(0, 1, 4, 2, 3, 5).reshape(b, t, h, p)

    def ssd_sequential(x, dt, A, Bm, Cm):
        """The plain recurrence (fp32), to check ssd_chunked."""
        b, t, h, p = x.shape
        g = Bm.shape[2]
        Bh = Bm.float().repeat_interleave(h // g, dim=2)
        Ch = Cm.float().repeat_interleave(h // g, dim=2)
        st = torch.zeros(b, h, p, Bm.shape[3], device=x.device)
        ys = []
        for i in range(t):
            st = st * torch.exp(dt[:, i] * A)[..., None, None] + (dt[:, i, :, None, None] * x[:, i].float()[..., None]) * Bh[:, i, :, None, :]
            ys.append((st * Ch[:, i, :, None, :]).sum(-1))
        return torch.stack(ys, 1)

    class Mamba2(nn.Module):
        def __init__(s, d):
            super().__init__()
            s.di = cfg["expand"] * d
            s.P, s.G, s.N, s.L = cfg["m_head_dim"], cfg["groups"], cfg["d_state"], cfg["chunk"]
            s.H = s.di // s.P
            conv = s.di + 2 * s.G * s.N
            s.norm = nn.Parameter(torch.ones(d))
            s.in_proj = nn.Linear(d, 2 * s.di + 2 * s.G * s.N + s.H, bias=False)
            s.conv_w = nn.Parameter(torch.empty(conv, 1, cfg["d_conv"]).uniform_(-0.5, 0.5))
            s.conv_b = nn.Parameter(torch.zeros(conv))
            dt = torch.exp(torch.rand(s.H) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
            s.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
            s.A_log = nn.Parameter(torch.log(torch.empty(s.H).uniform_(1, 16)))
            s.D = nn.Parameter(torch.ones(s.H))
            s.gnorm = nn.Parameter(torch.ones(s.di))
            s.out_proj = nn.Linear(s.di, d, bias=False)

        def forward(s, u):
            b, t, _ = u.shape
            di, G, N, H, P = s.di, s.G, s.N, s.H, s.P
            z, xBC, dt = torch.split(s.in_proj(rmsnorm(u, s.norm)), [di, di + 2 * G * N, H], dim=-1)
            xBC = F.conv1d(xBC.transpose(1, 2), s.conv_w.to(xBC.dtype), s.conv_b.to(xBC.dtype), padding=s.conv_w.shape[-1] - 1, groups=xBC.shape[-1])[..., :t]
            xBC = F.silu(xBC).transpose(1, 2)
            x, Bm, Cm = torch.split(xBC, [di, G * N, G * N], dim=-1)
            x = x.reshape(b, t, H, P)
            dt = F.softplus(dt.float() + s.dt_bias)
            A = -torch.exp(s.A_log.float())
            y = ssd_chunked(x, dt, A, Bm.reshape(b, t, G, N), Cm.reshape(b, t, G, N), min(s.L, t))
            y = y + x * s.D.to(x.dtype)[:, None]
            gated = (y.reshape(b, t, di) * F.silu(z)).reshape(b, t, G, di // G)
            y = rmsnorm(gated).reshape(b, t, di) * s.gnorm.to(gated.dtype)
            return u + s.out_proj(y)

    class Attention(nn.Module):
        def __init__(s, d):
            super().__init__()
            s.Hq, s.Hk = cfg["heads"], cfg["kv_heads"]
            s.hd = cfg["head_dim"] or d // s.Hq
            s.norm = nn.Parameter(torch.ones(d))
            s.qkv = nn.Linear(d, (s.Hq + 2 * s.Hk) * s.hd, bias=False)
            s.o_proj = nn.Linear(s.Hq * s.hd, d, bias=False)

        def forward(s, u):
            b, t, _ = u.shape
            q, k, v = torch.split(s.qkv(rmsnorm(u, s.norm)), [s.Hq * s.hd, s.Hk * s.hd, s.Hk * s.hd], dim=-1)
            q = q.reshape(b, t, s.Hq, s.hd).transpose(1, 2)
            k = k.reshape(b, t, s.Hk, s.hd).transpose(1, 2)
            v = v.reshape(b, t, s.Hk, s.hd).transpose(1, 2)
            # GQA: each KV head serves Hq/Hk query heads (expanded, so SDPA takes its flash path)
            k, v = k.repeat_interleave(s.Hq // s.Hk, dim=1), v.repeat_interleave(s.Hq // s.Hk, dim=1)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return u + s.o_proj(y.transpose(1, 2).reshape(b, t, s.Hq * s.hd))

    class MLP(nn.Module):
        def __init__(s, d):
            super().__init__()
            s.norm = nn.Parameter(torch.ones(d))
            s.fc1 = nn.Linear(d, cfg["hidden"], bias=False)
            s.fc2 = nn.Linear(cfg["hidden"], d, bias=False)

        def forward(s, u):
            return u + s.fc2(F.gelu(s.fc1(rmsnorm(u, s.norm))))

    class Hybrid(nn.Module):
        def __init__(s):
            super().__init__()
            d = cfg["d_model"]
            s.pattern = allocate_layers(cfg["layers"], cfg["attention"], cfg["mlp"])
            s.embed = nn.Embedding(cfg["vocab"], d)
            s.layers = nn.ModuleList([{"M": Mamba2, "*": Attention, "-": MLP}[c](d) for c in s.pattern])
            s.norm = nn.Parameter(torch.ones(d))
            s.head = nn.Linear(d, cfg["vocab"], bias=False)
            for name, p in s.named_parameters():
                if p.dim() == 2 and "conv" not in name:
                    nn.init.normal_(p, std=0.02)
            for l in s.layers:  # scaled init of the residual-stream outputs (GPT-2 / Megatron)
                for o in [getattr(l, "out_proj", None), getattr(l, "o_proj", None), getattr(l, "fc2", None)]:
                    if o is not None:
                        nn.init.normal_(o.weight, std=0.02 / math.sqrt(2 * len(s.pattern)))

        def forward(s, tokens, targets):
            x = s.embed(tokens)
            for l in s.layers:
                x = l(x)
            logits = s.head(rmsnorm(x, s.norm))
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))

    m = Hybrid().to(device)
    m.ssd_chunked, m.ssd_sequential = ssd_chunked, ssd_sequential
    return m


def make_optimizer(model, lr=3e-4):
    import torch

    no_decay = lambda n, p: p.dim() < 2 or n.endswith(("A_log", ".D", "dt_bias", "norm", "gnorm", "conv_b"))  # noqa: E731
    decay = [p for n, p in model.named_parameters() if not no_decay(n, p)]
    rest = [p for n, p in model.named_parameters() if no_decay(n, p)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95), eps=1e-8, fused=True)


def train_step(model, opt, fwd, tokens, targets):
    import torch

    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = fwd(tokens, targets)
    loss.backward()
    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss, gn


# --------------------------------------------------------------------------- one configuration
def measure(cfg, mode, steps, warmup):
    """Train `steps` timed steps after `warmup` (compile included there); one JSON object."""
    import torch

    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    dev = "cuda"
    model = build_model(cfg, dev)
    n = sum(p.numel() for p in model.parameters())
    spec = spec_of(cfg)
    assert n == count_params(spec), f"parameter count {n} != train_flops' {count_params(spec)}"
    opt = make_optimizer(model)
    fwd = model
    if mode == "compile":
        fwd = torch.compile(model)
    B, T = cfg["batch"], cfg["seq"]
    g = torch.Generator(device=dev).manual_seed(1)
    data = torch.randint(0, cfg["vocab"], (B, T + 1), device=dev, generator=g)
    tokens, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    t0 = time.perf_counter()
    for _ in range(warmup):
        loss, _ = train_step(model, opt, fwd, tokens, targets)
    torch.cuda.synchronize()
    warm_s = time.perf_counter() - t0
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss, gn = train_step(model, opt, fwd, tokens, targets)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    tps = steps * B * T / dt
    f = train_flops_per_token(spec, T, params=n)
    return {
        "impl": "pytorch",
        "mode": mode,
        "model": "hybrid-0.85b" if cfg["d_model"] == 2048 else f"hybrid-d{cfg['d_model']}",
        "pattern": model.pattern,
        "params": n,
        "batch": B,
        "seq": T,
        "steps": steps,
        "step_ms": 1000 * dt / steps,
        "tokens_per_s": tps,
        "flops_per_token": f["total"],
        "mfu": tps * f["total"] / H100_BF16_DENSE,
        "loss": float(loss),
        "grad_norm": float(gn),
        "warmup_s": warm_s,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(),
    }


def tiny_check():
    """Seconds on a GPU: the chunked SSD against the plain recurrence, then the tiny hybrid's
    loss falls on a fixed batch over 30 steps (eager), then its throughput."""
    import torch

    cfg = dict(TINY)
    torch.manual_seed(0)
    model = build_model(cfg, "cuda")
    b, t, h, p, g, n = 2, 256, 8, 64, 2, 64
    x = torch.randn(b, t, h, p, device="cuda")
    dt = torch.nn.functional.softplus(torch.randn(b, t, h, device="cuda") - 2)
    A = -torch.rand(h, device="cuda") * 4 - 0.5
    Bm, Cm = torch.randn(b, t, g, n, device="cuda"), torch.randn(b, t, g, n, device="cuda")
    ref = model.ssd_sequential(x, dt, A, Bm, Cm)
    got = model.ssd_chunked(x, dt, A, Bm, Cm, 64)
    rel = float((got - ref).norm() / ref.norm())
    print(json.dumps({"check": "ssd_chunked vs recurrence (fp32, chunk 64)", "rel_err": rel}), flush=True)
    ok = rel < 1e-4
    opt = make_optimizer(model, lr=3e-3)
    data = torch.randint(0, cfg["vocab"], (cfg["batch"], cfg["seq"] + 1), device="cuda")
    losses = []
    for _ in range(30):
        loss, _ = train_step(model, opt, model, data[:, :-1], data[:, 1:])
        losses.append(float(loss.detach()))
    print(json.dumps({"check": "tiny hybrid loss on a fixed batch", "pattern": model.pattern, "first": losses[0], "last": losses[-1]}), flush=True)
    ok = ok and losses[-1] < losses[0] - 0.3
    r = measure(cfg, "eager", steps=5, warmup=2)
    print(json.dumps(r), flush=True)
    print(f"tiny: {'ok' if ok else 'FAILED'}", flush=True)
    return 0 if ok else 1


def table(rows):
    head = f"{'impl':<10} {'mode':<8} {'batch×seq':>10} {'step ms':>9} {'tokens/s':>10} {'MFU':>7} {'peak GiB':>9}"
    out = [head, "-" * len(head)]
    for r in rows:
        if "skipped" in r:
            out.append(f"{r['impl']:<10} {r['mode']:<8} {'':>10} skipped: {r['skipped']}")
            continue
        out.append(f"{r['impl']:<10} {r['mode']:<8} {str(r['batch']) + '×' + str(r['seq']):>10} {r['step_ms']:>9.1f} {r['tokens_per_s']:>10.0f} {100 * r['mfu']:>6.1f}% {r['peak_mem_gib']:>9.1f}")
    return "\n".join(out)


def run_child(mode, batch, seq, steps, warmup, timeout):
    """One configuration in its own process: (result dict | None, message)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", mode, "--batch", str(batch), "--seq", str(seq), "--steps", str(steps), "--warmup", str(warmup)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"over {timeout:.0f} s"
    for line in reversed(r.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line), ""
    err = r.stderr.strip().splitlines()
    oom = any("OutOfMemory" in l or "out of memory" in l for l in err)
    return None, "out of memory" if oom else (err[-1] if err else f"exit {r.returncode}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="a small config in seconds (smoke test)")
    ap.add_argument("--modes", default="eager,compile", help="eager, compile, or both (comma-separated)")
    ap.add_argument("--batch", type=int, default=BENCH["batch"])
    ap.add_argument("--seq", type=int, default=BENCH["seq"])
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (torch.compile compiles in these)")
    ap.add_argument("--compile-timeout", type=float, default=240, help="skip torch.compile past this many seconds (compile + measure)")
    ap.add_argument("--eager-timeout", type=float, default=300)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        cfg = dict(BENCH, batch=a.batch, seq=a.seq)
        print(json.dumps(measure(cfg, a.child, a.steps, a.warmup)), flush=True)
        return 0
    if a.tiny:
        return tiny_check()
    rows = []
    for mode in [m.strip() for m in a.modes.split(",") if m.strip()]:
        batch = a.batch
        while True:
            t0 = time.perf_counter()
            r, why = run_child(mode, batch, a.seq, a.steps, a.warmup, a.compile_timeout if mode == "compile" else a.eager_timeout)
            if r is None and why == "out of memory" and batch > 1:
                print(f"{mode}: batch {batch} × {a.seq} does not fit; trying {batch // 2}", file=sys.stderr, flush=True)
                batch //= 2
                continue
            break
        if r is None:
            r = {"impl": "pytorch", "mode": mode, "batch": batch, "seq": a.seq, "skipped": why}
            print(f"{mode}: skipped ({why}, after {time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        print(json.dumps(r), flush=True)
        rows.append(r)
    print(table(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
