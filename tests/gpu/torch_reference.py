#!/usr/bin/env python3
"""An independent PyTorch implementation of Strata's model families, for the GPU suite.

Written from the published conventions (Megatron-LM / mamba_ssm / GPT-NeoX), not from Strata's
interpreter: pre-norm residual blocks; Mamba-2 with in_proj split z | xBC | dt, depthwise causal
conv + SiLU, dt = softplus(dt + dt_bias), A = −exp(A_log), the SSM as a plain recurrence, D skip,
gated RMSNorm per group (norm after the gate), out_proj; Mamba-1 with x_proj / dt_proj; attention
with a fused QKV projection, GQA, optional half-split rotary embedding on a fraction of each head,
explicit causal softmax; MLP with squared ReLU / GELU / SwiGLU. Everything in float64.

It reads a compiled project's manifest.json (config, pattern, blocks) and its weights, so the suite
can check both the reference interpreter (golden logits) and the CUDA kernels against it.

Usage: python3 tests/gpu/torch_reference.py PROJECT_DIR TOKENS.npy OUT.npy
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

DT = torch.float64


def rmsnorm(x, w, eps, one_p=False):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * ((1 + w) if one_p else w)


def block_norm(cfg, P, prefix, x):
    kind, eps = cfg["norm"], cfg["normEps"]
    if kind == "rmsnorm":
        return rmsnorm(x, P[f"{prefix}.weight"], eps)
    w = P[f"{prefix}.weight"]
    return F.layer_norm(x, (x.shape[-1],), (1 + w) if kind == "layernorm1p" else w, P[f"{prefix}.bias"], eps)


def causal_depthwise_conv(x, w, b):
    """x [B, T, C]; w [C, K]; PyTorch Conv1d(groups=C, padding=K−1) truncated to T."""
    T, K = x.shape[1], w.shape[1]
    y = F.conv1d(x.transpose(1, 2), w.unsqueeze(1), b, padding=K - 1, groups=x.shape[2])
    return y[..., :T].transpose(1, 2)


def mamba2(o, d, P, pre, x):
    Bsz, T, _ = x.shape
    d_inner = int(o["expand"] * d)
    Pd, G, N = o["headDim"], o["groups"], o["dState"]
    H = d_inner // Pd
    z, xBC, dt = torch.split(x @ P[f"{pre}.in_proj.weight"].T, [d_inner, d_inner + 2 * G * N, H], dim=-1)
    xBC = F.silu(causal_depthwise_conv(xBC, P[f"{pre}.conv1d.weight"], P[f"{pre}.conv1d.bias"]))
    xs, Bm, Cm = torch.split(xBC, [d_inner, G * N, G * N], dim=-1)
    xs = xs.reshape(Bsz, T, H, Pd)
    Bm = Bm.reshape(Bsz, T, G, N).repeat_interleave(H // G, dim=2)
    Cm = Cm.reshape(Bsz, T, G, N).repeat_interleave(H // G, dim=2)
    dt = F.softplus(dt + P[f"{pre}.dt_bias"])
    A = -torch.exp(P[f"{pre}.A_log"])
    h = torch.zeros(Bsz, H, Pd, N, dtype=DT, device=x.device)
    ys = []
    for t in range(T):
        h = h * torch.exp(dt[:, t] * A)[..., None, None] + dt[:, t, :, None, None] * xs[:, t, :, :, None] * Bm[:, t, :, None, :]
        ys.append((h * Cm[:, t, :, None, :]).sum(-1))
    y = torch.stack(ys, 1) + xs * P[f"{pre}.D"][None, None, :, None]
    g = (y.reshape(Bsz, T, d_inner) * F.silu(z)).reshape(Bsz, T, G, d_inner // G)
    g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + o["normEps"])
    y = g.reshape(Bsz, T, d_inner) * P[f"{pre}.norm.weight"]
    return y @ P[f"{pre}.out_proj.weight"].T


def mamba1(o, d, P, pre, x):
    Bsz, T, _ = x.shape
    d_inner = int(o["expand"] * d)
    N = o["dState"]
    R = P[f"{pre}.dt_proj.weight"].shape[1]
    xi, z = torch.split(x @ P[f"{pre}.in_proj.weight"].T, [d_inner, d_inner], dim=-1)
    xi = F.silu(causal_depthwise_conv(xi, P[f"{pre}.conv1d.weight"], P[f"{pre}.conv1d.bias"]))
    dt_low, Bm, Cm = torch.split(xi @ P[f"{pre}.x_proj.weight"].T, [R, N, N], dim=-1)
    dt = F.softplus(dt_low @ P[f"{pre}.dt_proj.weight"].T + P[f"{pre}.dt_proj.bias"])
    A = -torch.exp(P[f"{pre}.A_log"])
    h = torch.zeros(Bsz, d_inner, N, dtype=DT, device=x.device)
    ys = []
    for t in range(T):
        h = h * torch.exp(dt[:, t, :, None] * A) + dt[:, t, :, None] * xi[:, t, :, None] * Bm[:, t, None, :]
        ys.append((h * Cm[:, t, None, :]).sum(-1))
    y = (torch.stack(ys, 1) + xi * P[f"{pre}.D"]) * F.silu(z)
    return y @ P[f"{pre}.out_proj.weight"].T


def rotary(x, rot, theta):
    """GPT-NeoX half-split rotary embedding on the first `rot` dims of each head; x [B, T, H, D]."""
    T = x.shape[1]
    inv_freq = theta ** (-torch.arange(0, rot, 2, dtype=DT, device=x.device) / rot)
    ang = torch.arange(T, dtype=DT, device=x.device)[:, None] * inv_freq[None, :]
    cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
    x1, x2, rest = x[..., : rot // 2], x[..., rot // 2 : rot], x[..., rot:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], dim=-1)


def attention(o, d, P, pre, x):
    Bsz, T, _ = x.shape
    H, Hk = o["heads"], o["kvHeads"]
    W = P[f"{pre}.qkv.weight"]
    hd = W.shape[0] // (H + 2 * Hk)
    q, k, v = torch.split(x @ W.T, [H * hd, Hk * hd, Hk * hd], dim=-1)
    q, k, v = q.reshape(Bsz, T, H, hd), k.reshape(Bsz, T, Hk, hd), v.reshape(Bsz, T, Hk, hd)
    if o.get("rope"):
        rot = round(hd * o["rope"]["fraction"])
        q, k = rotary(q, rot, o["rope"]["theta"]), rotary(k, rot, o["rope"]["theta"])
    q = q.transpose(1, 2)
    k = k.transpose(1, 2).repeat_interleave(H // Hk, dim=1)
    v = v.transpose(1, 2).repeat_interleave(H // Hk, dim=1)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
    y = (s.softmax(-1) @ v).transpose(1, 2).reshape(Bsz, T, H * hd)
    return y @ P[f"{pre}.o_proj.weight"].T


def mlp(o, d, P, pre, x):
    h = x @ P[f"{pre}.fc1.weight"].T
    act = o["act"]
    if act == "relu2":
        h = F.relu(h).pow(2)
    elif act == "gelu":
        h = F.gelu(h)
    elif act == "swiglu":
        gate, up = h.chunk(2, dim=-1)
        h = F.silu(gate) * up
    else:
        raise ValueError(f"unknown MLP activation {act}")
    return h @ P[f"{pre}.fc2.weight"].T


MIXERS = {"mamba2": mamba2, "mamba": mamba1, "attention": attention, "mlp": mlp}


def forward(project_dir, tokens, device="cuda"):
    with open(os.path.join(project_dir, "manifest.json")) as f:
        m = json.load(f)
    cfg = m["config"]
    P = {k: v.to(device=device, dtype=DT) for k, v in load_file(os.path.join(project_dir, "weights.safetensors")).items()}
    ids = torch.as_tensor(tokens, device=device).long()
    x = P["embedding.weight"][ids]
    for i, blk in enumerate(m["blocks"]):
        mixer = MIXERS.get(blk["kind"])
        if mixer is None:
            raise ValueError(f"no PyTorch reference for layer kind '{blk['kind']}'")
        x = x + mixer(blk, cfg["dModel"], P, f"layers.{i}.mixer", block_norm(cfg, P, f"layers.{i}.norm", x))
    x = block_norm(cfg, P, "final_norm", x)
    head = P["embedding.weight"] if cfg["tiedEmbeddings"] else P["lm_head.weight"]
    return (x @ head.T).cpu().numpy()


if __name__ == "__main__":
    proj, tok_path, out_path = sys.argv[1:4]
    np.save(out_path, forward(proj, np.load(tok_path)).astype(np.float32))
