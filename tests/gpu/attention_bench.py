#!/usr/bin/env python3
"""Time torch SDPA (bf16) on the same configs as tests/gpu/attention_test.cu.

Prints lines in the same format as the CUDA driver:
    BENCH <config> <impl> ms <median ms> TFLOP/s <rate>
so that `./attention_test && python3 tests/gpu/attention_bench.py` in one run
gives directly comparable numbers. `torch-sdpa` is SDPA with its default
backend choice; the per-backend lines are for information.
"""
import torch
import torch.nn.functional as F

try:
    from torch.nn.attention import sdpa_kernel, SDPBackend
except Exception:  # very old torch
    sdpa_kernel = None

CONFIGS = [
    # name, B, T, S, H, Hk, D, causal
    ("B2_T8192_S8192_H32_Hk8_D128", 2, 8192, 8192, 32, 8, 128, True),
    ("B2_T8192_S8192_H32_Hk32_D128", 2, 8192, 8192, 32, 32, 128, True),
    ("B2_T8192_S8192_H32_Hk8_D64", 2, 8192, 8192, 32, 8, 64, True),
    # decode: T=1 sees every key, i.e. non-causal for torch (its causal mask is top-left aligned)
    ("B8_T1_S8192_H32_Hk8_D128", 8, 1, 8192, 32, 8, 128, False),
]


def flops(B, T, S, H, D, causal_bottom_right):
    if not causal_bottom_right:
        pairs = T * S
    elif T == S:
        pairs = T * S / 2
    else:
        pairs = T * (S - T) + T * (T + 1) / 2
    return 4.0 * B * H * pairs * D


def time_fn(fn, warmup=3, iters=15):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        e0 = torch.cuda.Event(enable_timing=True)
        e1 = torch.cuda.Event(enable_timing=True)
        e0.record()
        fn()
        e1.record()
        e1.synchronize()
        ts.append(e0.elapsed_time(e1))
    ts.sort()
    return ts[len(ts) // 2]


def main():
    torch.manual_seed(0)
    dev = torch.device("cuda")
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    backends = [("torch-sdpa", None)]
    if sdpa_kernel is not None:
        backends += [
            ("torch-sdpa-flash", SDPBackend.FLASH_ATTENTION),
            ("torch-sdpa-cudnn", SDPBackend.CUDNN_ATTENTION),
            ("torch-sdpa-efficient", SDPBackend.EFFICIENT_ATTENTION),
        ]
    for name, B, T, S, H, Hk, D, causal in CONFIGS:
        q = torch.randn(B, H, T, D, device=dev, dtype=torch.bfloat16)
        k = torch.randn(B, Hk, S, D, device=dev, dtype=torch.bfloat16)
        v = torch.randn(B, Hk, S, D, device=dev, dtype=torch.bfloat16)
        fl = flops(B, T, S, H, D, causal or T == 1)
        for impl, be in backends:
            def call(k=k, v=v, gqa=True):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=(gqa and Hk != H))

            fn = call
            note = ""
            try:
                if be is None:
                    try:
                        call()
                    except Exception:
                        # no enable_gqa support: expand K/V outside the timed region
                        kr = k.repeat_interleave(H // Hk, dim=1)
                        vr = v.repeat_interleave(H // Hk, dim=1)
                        fn = lambda: F.scaled_dot_product_attention(q, kr, vr, is_causal=causal)
                        note = " (kv expanded)"
                    ms = time_fn(fn)
                else:
                    with sdpa_kernel(be):
                        try:
                            call()
                        except Exception:
                            kr = k.repeat_interleave(H // Hk, dim=1)
                            vr = v.repeat_interleave(H // Hk, dim=1)
                            fn = lambda: F.scaled_dot_product_attention(q, kr, vr, is_causal=causal)
                            note = " (kv expanded)"
                        ms = time_fn(fn)
                print(f"BENCH {name} {impl} ms {ms:.3f} TFLOP/s {fl / (ms * 1e-3) / 1e12:.1f}{note}", flush=True)
            except Exception as e:  # backend not available for this shape
                print(f"SKIP {name} {impl}: {str(e).splitlines()[0][:120]}", flush=True)
        del q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
