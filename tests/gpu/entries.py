#!/usr/bin/env python3
"""The cached entry points of a compiled model, through its C ABI (lib/libmodel.so, ctypes):
prefill n tokens then one step per remaining token must give the forward's logits, position by
position; a prefill in two chunks (STRATA_PREFILL_CONTINUE) must agree too. No Node needed.

  python3 tests/gpu/entries.py PROJECT_DIR GOLDEN.npy TOKENS.npy N   (standalone, e.g. under compute-sanitizer)
"""
import ctypes
import os
import sys

import numpy as np

CONTINUE = 1
LOGITS_LAST = 2


class Model:
    def __init__(self, project_dir, weights):
        self.lib = lib = ctypes.CDLL(os.path.join(project_dir, "lib", "libmodel.so"))
        lib.strata_model_create.restype = ctypes.c_void_p
        lib.strata_model_create.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        lib.strata_last_error.restype = ctypes.c_char_p
        lib.strata_model_load_weights.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.strata_state_create.restype = ctypes.c_void_p
        lib.strata_state_create.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.strata_state_position.restype = ctypes.c_int64
        lib.strata_state_position.argtypes = [ctypes.c_void_p]
        lib.strata_state_destroy.argtypes = [ctypes.c_void_p]
        lib.strata_model_destroy.argtypes = [ctypes.c_void_p]
        i32p = np.ctypeslib.ndpointer(np.int32, flags="C_CONTIGUOUS")
        f32p = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
        lib.strata_model_prefill.argtypes = [ctypes.c_void_p, ctypes.c_void_p, i32p, ctypes.c_int, ctypes.c_uint32, f32p]
        lib.strata_model_step.argtypes = [ctypes.c_void_p, ctypes.c_void_p, i32p, f32p]
        lib.strata_model_forward.argtypes = [ctypes.c_void_p, i32p, ctypes.c_int, ctypes.c_int, f32p]
        self.m = lib.strata_model_create(project_dir.encode(), None)
        if not self.m:
            raise RuntimeError(lib.strata_last_error().decode())
        self.ok(lib.strata_model_load_weights(self.m, weights.encode()))

    def ok(self, status):
        if status != 0:
            raise RuntimeError(self.lib.strata_last_error().decode())

    def state(self, batch):
        s = self.lib.strata_state_create(self.m, batch)
        if not s:
            raise RuntimeError(self.lib.strata_last_error().decode())
        return s

    def prefill(self, s, tokens, flags=0):
        B, T = tokens.shape
        V = self.vocab
        out = np.full((B, V) if flags & LOGITS_LAST else (B, T, V), np.nan, np.float32)  # poisoned
        self.ok(self.lib.strata_model_prefill(self.m, s, np.ascontiguousarray(tokens, np.int32), T, flags, out))
        return out

    def step(self, s, tokens):
        out = np.full((tokens.shape[0], self.vocab), np.nan, np.float32)
        self.ok(self.lib.strata_model_step(self.m, s, np.ascontiguousarray(tokens, np.int32), out))
        return out

    def close(self):
        self.lib.strata_model_destroy(self.m)


def rel(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def per_token(a, b):
    """Relative error of each position's logit vector: [..., V] → [...]."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return np.linalg.norm(a - b, axis=-1) / np.maximum(np.linalg.norm(b, axis=-1), 1e-30)


def run(project_dir, weights, tokens, golden, n, vocab):
    """Returns {name: (global rel err, worst per-token rel err, detail)} for the cached entries."""
    m = Model(project_dir, weights)
    m.vocab = vocab
    B, S = tokens.shape
    res = {}
    try:
        s = m.state(B)
        pre = m.prefill(s, tokens[:, :n])
        res["prefill"] = (rel(pre, golden[:, :n]), float(per_token(pre, golden[:, :n]).max()), f"{n} tokens")
        steps = []
        for t in range(n, S):
            steps.append(m.step(s, tokens[:, t]))
        got = np.stack(steps, axis=1)
        pos = m.lib.strata_state_position(s)
        res["step"] = (rel(got, golden[:, n:]), float(per_token(got, golden[:, n:]).max()),
                       f"{S - n} steps after the prefill; position {pos} (expected {S}); greedy tokens agree "
                       f"{float((got.argmax(-1) == golden[:, n:].argmax(-1)).mean()):.3f}")
        if pos != S:
            res["step"] = (float("inf"), float("inf"), f"position {pos} after the steps, expected {S}")
        # chunked prefill: n1 tokens, then the rest of the prompt continuing (last logits only)
        s2 = m.state(B)
        n1 = max(1, n // 2 - 3)
        m.prefill(s2, tokens[:, :n1])
        last = m.prefill(s2, tokens[:, n1:n], CONTINUE | LOGITS_LAST)
        res["chunked prefill"] = (rel(last, golden[:, n - 1]), float(per_token(last, golden[:, n - 1]).max()), f"{n1} + {n - n1} tokens")
        # a fresh prefill on a used state starts over (reset)
        again = m.prefill(s2, tokens[:, :n])
        res["prefill resets the state"] = (rel(again, golden[:, :n]), float(per_token(again, golden[:, :n]).max()), "second prefill on a used state")
        for h in (s, s2):
            m.lib.strata_state_destroy(h)
    finally:
        m.close()
    return res


if __name__ == "__main__":
    d, golden, toks, n = sys.argv[1], np.load(sys.argv[2]), np.load(sys.argv[3]), int(sys.argv[4])
    r = run(d, os.path.join(d, "weights.safetensors"), toks, golden, n, golden.shape[-1])
    for k, (g, w, detail) in r.items():
        print(f"{k}: rel err {g:.2e}, worst token {w:.2e} ({detail})")
