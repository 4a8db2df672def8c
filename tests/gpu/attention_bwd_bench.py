"""Times torch SDPA's backward (causal, GQA) on the shapes of tests/gpu/attention_bwd_test.cu's
benchmark and prints Strata's ratio, read from that harness's log ("BENCH <path> B.. T.. H.. Hk..
D.. ms <ms>" lines).

Usage: python3 tests/gpu/attention_bwd_bench.py attention_bwd_test.log

SDPA is given q, k, v in Strata's token-major layout ([B, T, H, D] transposed to [B, H, T, D]
views, as a fused model hands them over) and timed for the backward alone
(torch.autograd.grad of a kept forward graph, no gradient accumulation), with CUDA events, each
backend that accepts the call (flash, cuDNN, memory-efficient) and the default dispatch.
Speed ratio = SDPA ms / Strata ms (> 1: Strata is faster).
"""
import re
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = [(4, 4096, 16, 4, 128), (2, 8192, 32, 8, 128), (2, 8192, 32, 8, 64)]


def time_sdpa_bwd(B, T, H, Hk, D, backend, iters=10):
    torch.manual_seed(0)
    dev = "cuda"
    q = torch.randn(B, T, H, D, device=dev, dtype=torch.bfloat16).transpose(1, 2).requires_grad_(True)
    k = torch.randn(B, T, Hk, D, device=dev, dtype=torch.bfloat16).transpose(1, 2).requires_grad_(True)
    v = torch.randn(B, T, Hk, D, device=dev, dtype=torch.bfloat16).transpose(1, 2).requires_grad_(True)
    go = torch.randn(B, H, T, D, device=dev, dtype=torch.bfloat16)
    ctx = sdpa_kernel([backend]) if backend is not None else torch.enable_grad()
    with ctx:
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        for _ in range(2):
            torch.autograd.grad(o, (q, k, v), go, retain_graph=True)
        torch.cuda.synchronize()
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(iters):
            torch.autograd.grad(o, (q, k, v), go, retain_graph=True)
        e1.record()
        torch.cuda.synchronize()
    return e0.elapsed_time(e1) / iters


def main():
    ours = {}
    if len(sys.argv) > 1:
        for line in open(sys.argv[1]):
            m = re.match(r"BENCH (\S+) B(\d+) T(\d+) H(\d+) Hk(\d+) D(\d+) ms ([0-9.]+)", line)
            if m:
                key = tuple(int(x) for x in m.groups()[1:6])
                ours.setdefault(key, {})[m.group(1)] = float(m.group(7))
    backends = [("default", None), ("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                ("efficient", SDPBackend.EFFICIENT_ATTENTION)]
    for shape in SHAPES:
        B, T, H, Hk, D = shape
        flops = 2.5 * 4.0 * B * H * D * (T * (T + 1) / 2)
        best = None
        default_ms = None
        for name, be in backends:
            try:
                ms = time_sdpa_bwd(*shape, be)
            except Exception as e:  # a backend that rejects the call (GQA, head dim, ...)
                print(f"SDPA {name:9s} B{B} T{T} H{H} Hk{Hk} D{D}: not available ({type(e).__name__}: {str(e)[:120]})")
                continue
            print(f"SDPA {name:9s} B{B} T{T} H{H} Hk{Hk} D{D} backward ms {ms:.3f} ({flops / ms * 1e-9:.1f} TFLOP/s)")
            if best is None or ms < best[1]:
                best = (name, ms)
            if name == "default":
                default_ms = ms
        mine = ours.get(shape, {})
        for path, ms in sorted(mine.items()):
            ratios = (f"vs default {default_ms / ms:.2f}x" if default_ms else "no default") + (f", vs best ({best[0]}) {best[1] / ms:.2f}x" if best else "")
            print(f"RATIO strata {path} B{B} T{T} H{H} Hk{Hk} D{D}: {ms:.3f} ms, speed {ratios} (target >= 0.5x)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
