#!/usr/bin/env python3
"""PyTorch peers for tests/gpu/ssm_test.cu (same shapes), timed with torch.cuda.Event (median).

  * Mamba-2 SSD: ssd_minimal-style chunked algorithm (einsum + segsum), written here, fp32 and
    bf16 variants, from the same bf16 inputs (x, dt_raw, B, C) incl. softplus(dt + bias).
  * Mamba-1 selective scan: sequential loop over T on GPU (selective_scan_ref-style, state
    [B,D,N] fp32), and a chunked log-space parallel form (logcumsumexp, signs split).
Usage: python3 tests/gpu/ssm_bench.py
"""
import math
import torch
import torch.nn.functional as F

dev = "cuda"
torch.manual_seed(0)


def median_ms(fn, warm=2, iters=5):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


# ------------------------------------------------------------------ Mamba-2 SSD (ssd_minimal style)
def segsum(x):
    T = x.size(-1)
    x = x[..., None].expand(*x.shape, T)
    mask = torch.tril(torch.ones(T, T, device=x.device, dtype=torch.bool), diagonal=-1)
    x = x.masked_fill(~mask, 0)
    x_segsum = torch.cumsum(x, dim=-2)
    mask = torch.tril(torch.ones(T, T, device=x.device, dtype=torch.bool), diagonal=0)
    return x_segsum.masked_fill(~mask, -torch.inf)


def ssd_torch(x, dt_raw, dt_bias, A, Bm, Cm, D, L, dtype=torch.float32, h0=None):
    """x [b,t,h,p] bf16, dt_raw [b,t,h] bf16, Bm/Cm [b,t,g,n] bf16. T multiple of L."""
    b, t, h, p = x.shape
    g = Bm.shape[2]
    c = t // L
    dt = F.softplus(dt_raw.float() + dt_bias)                      # [b,t,h]
    Ad = (dt * A).reshape(b, c, L, h).permute(0, 3, 1, 2)          # [b,h,c,l]
    X = (x.float() * dt[..., None]).to(dtype).reshape(b, c, L, h, p)
    Bh = Bm.repeat_interleave(h // g, dim=2).to(dtype).reshape(b, c, L, h, -1)
    Ch = Cm.repeat_interleave(h // g, dim=2).to(dtype).reshape(b, c, L, h, -1)
    A_cumsum = torch.cumsum(Ad, dim=-1)
    Lm = torch.exp(segsum(Ad)).to(dtype)
    Y_diag = torch.einsum("bclhn,bcshn,bhcls,bcshp->bclhp", Ch, Bh, Lm, X)
    decay_states = torch.exp(A_cumsum[:, :, :, -1:] - A_cumsum).to(dtype)
    states = torch.einsum("bclhn,bhcl,bclhp->bchpn", Bh, decay_states, X)
    if h0 is None:
        h0 = torch.zeros_like(states[:, :1])
    states = torch.cat([h0.to(dtype), states], dim=1)
    decay_chunk = torch.exp(segsum(F.pad(A_cumsum[:, :, :, -1], (1, 0)))).to(dtype)
    new_states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)
    states, final_state = new_states[:, :-1], new_states[:, -1]
    state_decay_out = torch.exp(A_cumsum).to(dtype)
    Y_off = torch.einsum("bclhn,bchpn,bhcl->bclhp", Ch, states, state_decay_out)
    y = (Y_diag + Y_off).reshape(b, t, h, p) + D[:, None] * x.float()
    return y.to(torch.bfloat16), final_state.float()


def ssd_sequential(x, dt_raw, dt_bias, A, Bm, Cm, D):
    b, t, h, p = x.shape
    g = Bm.shape[2]
    dt = F.softplus(dt_raw.double() + dt_bias.double())
    Bh = Bm.repeat_interleave(h // g, dim=2).double()
    Ch = Cm.repeat_interleave(h // g, dim=2).double()
    st = torch.zeros(b, h, p, Bm.shape[-1], dtype=torch.float64, device=x.device)
    ys = []
    for i in range(t):
        a = torch.exp(dt[:, i] * A.double())
        st = a[..., None, None] * st + (dt[:, i, :, None] * x[:, i].double())[..., None] * Bh[:, i, :, None, :]
        ys.append((st * Ch[:, i, :, None, :]).sum(-1) + D.double()[:, None] * x[:, i].double())
    return torch.stack(ys, 1), st


def ssd_inputs(b, t, h, p, g, n):
    x = (torch.rand(b, t, h, p, device=dev) * 2 - 1).bfloat16()
    dt_raw = (torch.rand(b, t, h, device=dev) - 0.5).bfloat16()
    Bm = (torch.rand(b, t, g, n, device=dev) * 2 - 1).bfloat16()
    Cm = (torch.rand(b, t, g, n, device=dev) * 2 - 1).bfloat16()
    dtt = torch.exp(torch.empty(h, device=dev).uniform_(math.log(1e-3), math.log(0.1)))
    dt_bias = dtt + torch.log(-torch.expm1(-dtt))
    A = -torch.empty(h, device=dev).uniform_(1, 16)
    D = torch.ones(h, device=dev)
    return x, dt_raw, dt_bias, A, Bm, Cm, D


def bench_ssd():
    # sanity of the peer itself on a small shape
    args = ssd_inputs(1, 256, 4, 64, 2, 128)
    y, hT = ssd_torch(*args, L=128)
    yr, hr = ssd_sequential(*args)
    e_y = ((y.double() - yr).norm() / yr.norm()).item()
    e_h = ((hT.double() - hr).norm() / hr.norm()).item()
    print(f"CHECK torch ssd_minimal(fp32) vs sequential fp64: y relL2 {e_y:.2e}, hT relL2 {e_h:.2e}")
    for T in (8192, 4096):
        args = ssd_inputs(2, T, 128, 64, 8, 128)
        for dtype in (torch.float32, torch.bfloat16):
            try:
                ms = median_ms(lambda: ssd_torch(*args, L=128, dtype=dtype))
                print(f"TORCH ssd_minimal einsum {str(dtype).split('.')[-1]} B=2 T={T} H=128 P=64 G=8 N=128 L=128: {ms:.3f} ms")
            except torch.OutOfMemoryError:
                print(f"TORCH ssd_minimal {dtype} T={T}: OOM")
            torch.cuda.empty_cache()
        del args
        torch.cuda.empty_cache()


# ------------------------------------------------------------------ Mamba-1 selective scan
def scan_inputs(b, t, d, n):
    u = (torch.rand(b, t, d, device=dev) * 2 - 1).bfloat16()
    delta = (torch.rand(b, t, d, device=dev) - 0.5).bfloat16()
    z = (torch.rand(b, t, d, device=dev) * 2 - 1).bfloat16()
    Bm = (torch.rand(b, t, n, device=dev) * 2 - 1).bfloat16()
    Cm = (torch.rand(b, t, n, device=dev) * 2 - 1).bfloat16()
    dtt = torch.exp(torch.empty(d, device=dev).uniform_(math.log(1e-3), math.log(0.1)))
    dbias = dtt + torch.log(-torch.expm1(-dtt))
    A = -torch.empty(d, n, device=dev).uniform_(1, 16)
    Ds = torch.ones(d, device=dev)
    return u, delta, dbias, A, Bm, Cm, Ds, z


def scan_loop(u, delta, dbias, A, Bm, Cm, Ds, z):
    b, t, d = u.shape
    dl = F.softplus(delta.float() + dbias)
    uf = u.float()
    Bf, Cf = Bm.float(), Cm.float()
    h = torch.zeros(b, d, A.shape[1], device=u.device)
    ys = []
    for i in range(t):
        h = torch.exp(dl[:, i, :, None] * A) * h + (dl[:, i] * uf[:, i])[..., None] * Bf[:, i, None, :]
        ys.append(torch.einsum("bdn,bn->bd", h, Cf[:, i]))
    y = torch.stack(ys, 1) + Ds * uf
    y = y * F.silu(z.float())
    return y.bfloat16(), h


def scan_logspace(u, delta, dbias, A, Bm, Cm, Ds, z, chunk=64):
    """h_t = exp(cs_t) * (h_prev + sum_{s<=t} exp(-cs_s) dBu_s), evaluated with logcumsumexp on
    |dBu| split by sign (no overflow); chunked over T to bound memory ([B,chunk,D,N] fp32)."""
    b, t, d = u.shape
    dl = F.softplus(delta.float() + dbias)
    uf = u.float()
    h = torch.zeros(b, d, A.shape[1], device=u.device)
    ys = []
    NEG = -1e30
    for c0 in range(0, t, chunk):
        dlc = dl[:, c0:c0 + chunk]                                   # [b,l,d]
        cs = torch.cumsum(dlc[..., None] * A, dim=1)                  # [b,l,d,n]
        dbu = (dlc * uf[:, c0:c0 + chunk])[..., None] * Bm[:, c0:c0 + chunk, None, :].float()
        la = torch.log(dbu.abs()) - cs
        lp = torch.logcumsumexp(torch.where(dbu > 0, la, NEG), dim=1)
        ln = torch.logcumsumexp(torch.where(dbu < 0, la, NEG), dim=1)
        hs = torch.exp(cs + lp) - torch.exp(cs + ln) + torch.exp(cs) * h[:, None]
        ys.append(torch.einsum("bldn,bln->bld", hs, Cm[:, c0:c0 + chunk].float()))
        h = hs[:, -1]
    y = torch.cat(ys, 1) + Ds * uf
    y = y * F.silu(z.float())
    return y.bfloat16(), h


def bench_scan():
    args = scan_inputs(1, 300, 64, 128)
    y1, h1 = scan_loop(*args)
    y2, h2 = scan_logspace(*args)
    print(f"CHECK torch log-space parallel vs loop: y relL2 {((y2.float()-y1.float()).norm()/y1.float().norm()).item():.2e}, "
          f"hT relL2 {((h2-h1).norm()/h1.norm()).item():.2e}")
    for n in (128, 16):
        args = scan_inputs(1, 4096, 8192, n)
        ms = median_ms(lambda: scan_loop(*args), warm=1, iters=3)
        print(f"TORCH selective_scan loop over T B=1 T=4096 D=8192 N={n}: {ms:.3f} ms")
        try:
            ms = median_ms(lambda: scan_logspace(*args), warm=1, iters=3)
            print(f"TORCH selective_scan log-space chunked parallel B=1 T=4096 D=8192 N={n}: {ms:.3f} ms")
        except torch.OutOfMemoryError:
            print("TORCH selective_scan log-space: OOM")
        del args
        torch.cuda.empty_cache()


def bench_conv():
    b, t, c, k = 2, 8192, 18432, 4
    x = torch.randn(b, t, 34944, device=dev).bfloat16()[:, :, 16384:16384 + c]
    w = torch.randn(c, k, device=dev).bfloat16()
    bias = torch.randn(c, device=dev).bfloat16()

    def f():
        xx = x.transpose(1, 2)  # [b,c,t]
        y = F.conv1d(xx, w[:, None, :], bias, padding=k - 1, groups=c)[..., :t]
        return F.silu(y).transpose(1, 2).contiguous()

    ms = median_ms(f, warm=2, iters=10)
    print(f"TORCH causal conv1d (F.conv1d depthwise + silu, strided in) K=4 B=2 T=8192 C=18432: {ms:.3f} ms")


if __name__ == "__main__":
    print("torch", torch.__version__, torch.cuda.get_device_name(0))
    for fn in (bench_ssd, bench_scan, bench_conv):
        try:
            fn()
        except Exception as e:  # keep going: report what ran
            print(f"ERROR in {fn.__name__}: {type(e).__name__}: {e}")
        torch.cuda.empty_cache()
