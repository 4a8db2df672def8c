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


class Sampling(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("temperature", ctypes.c_float), ("top_k", ctypes.c_int32), ("top_p", ctypes.c_float),
                ("repetition_penalty", ctypes.c_float), ("seed", ctypes.c_uint64)]


class Stats(ctypes.Structure):
    _fields_ = [("prefill_ms", ctypes.c_double), ("decode_ms", ctypes.c_double), ("prompt_tokens", ctypes.c_int64),
                ("generated_tokens", ctypes.c_int64), ("steps", ctypes.c_int32)]


class Model:
    def __init__(self, project_dir, weights=None, seed=1):
        self.lib = lib = ctypes.CDLL(os.path.join(project_dir, "lib", "libmodel.so"))
        lib.strata_model_create.restype = ctypes.c_void_p
        lib.strata_model_create.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        lib.strata_last_error.restype = ctypes.c_char_p
        lib.strata_model_load_weights.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.strata_state_create.restype = ctypes.c_void_p
        lib.strata_state_create.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.strata_state_position.restype = ctypes.c_int64
        lib.strata_state_position.argtypes = [ctypes.c_void_p]
        lib.strata_state_destroy.argtypes = [ctypes.c_void_p]
        lib.strata_model_destroy.argtypes = [ctypes.c_void_p]
        i32p = np.ctypeslib.ndpointer(np.int32, flags="C_CONTIGUOUS")
        f32p = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
        lib.strata_model_prefill.argtypes = [ctypes.c_void_p, ctypes.c_void_p, i32p, ctypes.c_int, ctypes.c_uint32, f32p]
        lib.strata_model_step.argtypes = [ctypes.c_void_p, ctypes.c_void_p, i32p, f32p]
        lib.strata_model_forward.argtypes = [ctypes.c_void_p, i32p, ctypes.c_int, ctypes.c_int, f32p]
        lib.strata_model_generate.argtypes = [ctypes.c_void_p, ctypes.c_void_p, i32p, ctypes.c_int, ctypes.c_int, ctypes.c_uint32, ctypes.POINTER(Sampling),
                                              ctypes.c_void_p, ctypes.c_int, i32p, i32p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(Stats)]
        lib.strata_sampling_init.argtypes = [ctypes.POINTER(Sampling)]
        lib.strata_state_set_position.argtypes = [ctypes.c_void_p, ctypes.c_int64]
        lib.strata_model_init_weights.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        lib.strata_model_info_json.restype = ctypes.c_char_p
        lib.strata_model_info_json.argtypes = [ctypes.c_void_p]
        self.m = lib.strata_model_create(project_dir.encode(), None)
        if not self.m:
            raise RuntimeError(lib.strata_last_error().decode())
        if weights:
            self.ok(lib.strata_model_load_weights(self.m, weights.encode()))
        else:
            self.ok(lib.strata_model_init_weights(self.m, seed))

    def ok(self, status):
        if status != 0:
            raise RuntimeError(self.lib.strata_last_error().decode())

    def state(self, batch, context=0):
        s = self.lib.strata_state_create(self.m, batch, context)
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

    def forward(self, tokens):
        B, T = tokens.shape
        out = np.full((B, T, self.vocab), np.nan, np.float32)
        self.ok(self.lib.strata_model_forward(self.m, np.ascontiguousarray(tokens, np.int32), B, T, out))
        return out

    def generate(self, s, prompt, max_new, temperature=0.0, top_k=0, top_p=1.0, penalty=1.0, seed=0, cont=False, stop=()):
        sp = Sampling()
        self.lib.strata_sampling_init(ctypes.byref(sp))
        sp.temperature, sp.top_k, sp.top_p, sp.repetition_penalty, sp.seed = temperature, top_k, top_p, penalty, seed
        B, T = prompt.shape
        out = np.full((B, max_new), -7, np.int32)
        lens = np.zeros(B, np.int32)
        st = Stats()
        stops = np.ascontiguousarray(np.array(stop, np.int32)) if len(stop) else None
        self.ok(self.lib.strata_model_generate(self.m, s, np.ascontiguousarray(prompt, np.int32), T, max_new, 1 if cont else 0, ctypes.byref(sp),
                                               stops.ctypes.data if stops is not None else None, len(stop), out, lens, None, None, ctypes.byref(st)))
        return out, lens, st

    def info(self):
        import json
        return json.loads(self.lib.strata_model_info_json(self.m).decode())

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


def init_on_gpu_matches_host(project_dir, tokens, vocab, seed=3):
    """strata_model_init_weights runs on the GPU (runtime/src/init_device.cu) and must produce the
    host path's bytes (STRATA_INIT_ON_HOST=1): one forward from each init, logits bit for bit."""
    gpu = Model(project_dir, None, seed)
    os.environ["STRATA_INIT_ON_HOST"] = "1"
    try:
        host = Model(project_dir, None, seed)
    finally:
        del os.environ["STRATA_INIT_ON_HOST"]
    try:
        t = np.ascontiguousarray(tokens[:1, :min(tokens.shape[1], 8)], np.int32)
        gpu.vocab = host.vocab = vocab
        a, b = gpu.forward(t), host.forward(t)
        same = a.tobytes() == b.tobytes()
        diff = 0.0 if same else rel(a, b)
        return (0.0 if same else float("inf"), 0.0, f"seed {seed}, forward of {list(t.shape)} tokens: logits bit-identical {same}"
                + ("" if same else f" (rel diff {diff:.2e})"))
    finally:
        gpu.close()
        host.close()


def run(project_dir, weights, tokens, golden, n, vocab):
    """Returns {name: (global rel err, worst per-token rel err, detail)} for the cached entries."""
    res = {}
    try:
        res["weights initialised on the GPU = on the host"] = init_on_gpu_matches_host(project_dir, tokens, vocab)
    except Exception as e:
        res["weights initialised on the GPU = on the host"] = (float("inf"), 0.0, f"{type(e).__name__}: {e}")
    m = Model(project_dir, weights)
    m.vocab = vocab
    B, S = tokens.shape
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
        # generation: greedy tokens are the forward's argmax (up to bf16 near-ties), batch-invariant;
        # seeded sampling reproduces
        G = 12
        toks, lens, st = m.generate(s2, tokens[:, :n], G)
        full = m.forward(np.concatenate([tokens[:, :n], toks], axis=1))
        picked = np.take_along_axis(full[:, n - 1:n - 1 + G], toks[..., None], axis=-1)[..., 0]
        best = full[:, n - 1:n - 1 + G].max(-1)
        spread = full[:, n - 1:n - 1 + G].std(-1)
        agree = float((full[:, n - 1:n - 1 + G].argmax(-1) == toks).mean())
        near = float(((best - picked) <= 0.05 * spread).mean())
        res["greedy generate"] = (0.0 if near == 1.0 and (lens == G).all() else float("inf"), 0.0,
                                  f"{G} tokens × {B}: forward argmax agrees {agree:.3f}, all within 0.05σ of the max: {near == 1.0}; "
                                  f"TTFT {st.prefill_ms:.2f} ms, {st.steps} steps in {st.decode_ms:.2f} ms")
        s1 = m.state(1)
        alone, _, _ = m.generate(s1, tokens[:1, :n], G)
        res["greedy generate is batch-invariant"] = (0.0 if (alone[0] == toks[0]).all() else float("inf"), 0.0, f"sequence 0 alone vs in a batch of {B}")
        a, _, _ = m.generate(s2, tokens[:, :n], G, temperature=0.9, top_k=40, top_p=0.95, penalty=1.1, seed=7)
        b, _, _ = m.generate(s2, tokens[:, :n], G, temperature=0.9, top_k=40, top_p=0.95, penalty=1.1, seed=7)
        c, _, _ = m.generate(s2, tokens[:, :n], G, temperature=0.9, top_k=40, top_p=0.95, penalty=1.1, seed=8)
        ok = (a == b).all() and (a >= 0).all() and (a < vocab).all()
        res["seeded sampling reproduces"] = (0.0 if ok else float("inf"), 0.0, f"seed 7 twice equal: {(a == b).all()}, seed 8 differs: {(a != c).any()}")
        # a sequence that stops early frees its slot: the others continue at a smaller batch
        # (compaction); the tokens must equal those of the run without it (STRATA_COMPACT=0)
        G2 = 16
        free_run, _, _ = m.generate(s2, tokens[:, :n], G2)
        # stop sequence 0 within its first 3 tokens on a token no other sequence emits, so the
        # others run on and the batch must compact (else the check would pass without compacting)
        others = set(free_run[1:].ravel().tolist())
        separating = [int(t) for t in free_run[0, :3] if int(t) not in others]
        stop = separating[:1] or [int(free_run[0, 2])]
        os.environ["STRATA_COMPACT"] = "0"
        try:
            plain = Model(project_dir, weights)
        finally:
            del os.environ["STRATA_COMPACT"]
        plain.vocab = vocab
        sp_ = plain.state(B)
        same = True
        detail = []
        for kw in ({}, {"temperature": 0.9, "top_k": 40, "top_p": 0.95, "penalty": 1.1, "seed": 7}):
            ct, cl, _ = m.generate(s2, tokens[:, :n], G2, stop=stop, **kw)
            comp = m.info()["model"].get("lastGenerate", {}).get("compactions", 0)
            pt, pl, _ = plain.generate(sp_, tokens[:, :n], G2, stop=stop, **kw)
            same &= bool((ct == pt).all() and (cl == pl).all())
            if not kw:  # greedy: the stop token above ends sequence 0 alone, early: a compaction must happen
                same &= bool(separating) and comp >= 1
            detail.append(f"{'sampled' if kw else 'greedy'}: lengths {cl.tolist()}, {comp} compaction(s), equal {bool((ct == pt).all() and (cl == pl).all())}")
        plain.lib.strata_state_destroy(sp_)
        plain.close()
        if not separating:
            detail.append("no token of sequence 0's first 3 is absent from the others' run: compaction not exercised")
        res["early stop frees the slot (compaction) = no compaction"] = (0.0 if same else float("inf"), 0.0, "; ".join(detail))
        # the decode steps after the first are CUDA-graph replays; eager steps give the same tokens
        replays = m.info()["model"].get("decodeGraphReplays", 0)
        os.environ["STRATA_CUDA_GRAPHS"] = "0"
        try:
            eager = Model(project_dir, weights)
        finally:
            del os.environ["STRATA_CUDA_GRAPHS"]
        eager.vocab = vocab
        se = eager.state(B)
        etoks, _, _ = eager.generate(se, tokens[:, :n], G)
        eager.lib.strata_state_destroy(se)
        eager.close()
        res["CUDA-graph decode = eager decode"] = (0.0 if replays > 0 and (etoks == toks).all() else float("inf"), 0.0,
                                                   f"{replays} steps replayed from graphs so far; greedy tokens equal: {bool((etoks == toks).all())}")
        for h in (s, s2, s1):
            m.lib.strata_state_destroy(h)
    finally:
        m.close()
    return res


if __name__ == "__main__":
    d, golden, toks, n = sys.argv[1], np.load(sys.argv[2]), np.load(sys.argv[3]), int(sys.argv[4])
    r = run(d, os.path.join(d, "weights.safetensors"), toks, golden, n, golden.shape[-1])
    for k, (g, w, detail) in r.items():
        print(f"{k}: rel err {g:.2e}, worst token {w:.2e} ({detail})")
