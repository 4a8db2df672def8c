"""Peer timings for tests/gpu/matmul_test.cu: torch.matmul (cuBLAS) on the same backward GEMMs.

dgrad: gy [tokens, Nw] @ W [Nw, K] (bf16 out); wgrad: gy.T @ x over the tokens ([Nw, K], bf16 out,
the fp32-accumulating cuBLAS path PyTorch uses for linear's weight gradient).
"""
import sys
import time

import torch

COOL = float(sys.argv[sys.argv.index("--cool") + 1]) / 1000 if "--cool" in sys.argv else 0.0  # as matmul_test's --cool MS

def bench(f, warm=3, iters=10):
    if COOL:
        torch.cuda.synchronize()
        time.sleep(COOL)
    for _ in range(warm):
        f()
    ts = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); f(); b.record(); torch.cuda.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]

tokens, K = 16384, 4096
gy = torch.randn(tokens, 160, device="cuda", dtype=torch.bfloat16)
x = torch.randn(tokens, K, device="cuda", dtype=torch.bfloat16)
tw = bench(lambda: gy.t() @ x)
print(f"PEER torch wgrad small weight [160,{K}] over {tokens} tokens: {tw:.3f} ms {2.0 * tokens * 160 * K / tw * 1e-9:.0f} TFLOP/s")
gy = torch.randn(tokens, 2048, device="cuda", dtype=torch.bfloat16)
tw = bench(lambda: gy.t() @ x[:, :2048])
print(f"PEER torch wgrad [2048,2048] over {tokens} tokens: {tw:.3f} ms {2.0 * tokens * 2048 * 2048 / tw * 1e-9:.0f} TFLOP/s")
# weights [Nw, Kw], as matmul_test.cu's list: two square-ish shapes, then the ~0.85B hybrid's (Mamba-2 in_proj,
# out_proj, MLP fc1, fc2, attention qkv, LM head)
for nw, kw in ((4096, 4096), (18560, 4096), (10304, 2048), (2048, 4096), (8192, 2048), (2048, 8192), (3072, 2048), (32000, 2048)):
    gy = torch.randn(tokens, nw, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(nw, kw, device="cuda", dtype=torch.bfloat16)
    x = torch.randn(tokens, kw, device="cuda", dtype=torch.bfloat16)
    fl = 2.0 * tokens * nw * kw
    td = bench(lambda: gy @ w)
    tw = bench(lambda: gy.t() @ x)
    print(f"PEER torch dgrad tokens={tokens} Nw={nw} K={kw}: {td:.3f} ms {fl / td * 1e-9:.0f} TFLOP/s | wgrad [{nw},{kw}]: {tw:.3f} ms {fl / tw * 1e-9:.0f} TFLOP/s")
    del gy, w, x
