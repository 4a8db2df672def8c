#!/usr/bin/env python3
"""GPU parity, step 1 (on the GPU machine; PyTorch + transformers, no Node).

Builds small random Hugging Face models — NemotronH with all three block kinds (odd attention
head count, 3 KV groups, Mamba-2 with n_groups = 2), Mamba2 (n_groups = 1, where transformers'
full-width gated norm equals the per-group one), Mamba, Llama (odd head count) — with vocabularies
that are not powers of two, perturbs every parameter (norm weights, A_log, D, dt biases too, so a
mis-mapped tensor shows), rounds them to bf16 and saves them with save_pretrained. Reference
logits: transformers in float32 with those bf16 weights (and in bf16, to show what bf16 costs).
Also writes a Megatron-LM-layout checkpoint (torch.save, fused pre-norms, per-group interleaved
QKV, conv1d [C, 1, K], _extra_state, saved args, RNG state) of the NemotronH model.

    python3 make_models.py OUT_DIR        # writes OUT_DIR/<model>.tar, one per model
"""
import argparse
import io
import json
import os
import random
import sys
import tarfile
from collections import OrderedDict

import numpy as np
import torch

SEED = int(os.environ.get("STRATA_TEST_SEED", "20261130"))
BATCH, SEQ = 2, 80

CONFIGS = {
    "nemotron_h": dict(
        cls="NemotronHForCausalLM", vocab_size=1000, hidden_size=256, hybrid_override_pattern="M*-M-*M-",
        num_attention_heads=9, num_key_value_heads=3, head_dim=32, intermediate_size=512, mlp_hidden_act="relu2",
        mamba_num_heads=8, mamba_head_dim=64, n_groups=2, ssm_state_size=64, conv_kernel=4, chunk_size=64,
        layer_norm_epsilon=1e-5, tie_word_embeddings=False, max_position_embeddings=512, use_mamba_kernels=False,
        residual_in_fp32=False),
    "mamba2": dict(
        cls="Mamba2ForCausalLM", vocab_size=776, hidden_size=128, num_hidden_layers=2, expand=4, num_heads=8,
        head_dim=64, n_groups=1, state_size=64, conv_kernel=4, chunk_size=64, layer_norm_epsilon=1e-5,
        tie_word_embeddings=False, residual_in_fp32=False),
    "mamba": dict(
        cls="MambaForCausalLM", vocab_size=520, hidden_size=128, num_hidden_layers=2, expand=2,
        state_size=16, conv_kernel=4, time_step_rank="auto", layer_norm_epsilon=1e-5, tie_word_embeddings=True,
        residual_in_fp32=False),
    "llama": dict(
        cls="LlamaForCausalLM", vocab_size=1000, hidden_size=96, intermediate_size=200, num_hidden_layers=2,
        num_attention_heads=3, num_key_value_heads=1, head_dim=32, rms_norm_eps=1e-6, hidden_act="silu",
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0}, max_position_embeddings=256,
        tie_word_embeddings=False),
}


def build(name, spec):
    import transformers
    kw = {k: v for k, v in spec.items() if k != "cls"}
    cfg_cls = getattr(transformers, spec["cls"].replace("ForCausalLM", "Config"))
    try:
        cfg = cfg_cls(**kw)
    except TypeError:
        if "rope_parameters" not in kw:
            raise
        kw["rope_theta"] = kw.pop("rope_parameters")["rope_theta"]  # transformers < 5
        cfg = cfg_cls(**kw)
    try:
        cfg._attn_implementation = "eager"
    except Exception:
        pass
    torch.manual_seed(SEED)
    model = getattr(transformers, spec["cls"])(cfg).eval()
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "norm" in pname and pname.endswith("weight"):
                p.copy_(1 + 0.2 * noise)
            elif pname.endswith("A_log"):
                p.add_(0.1 * noise)
            elif pname.endswith(".D"):
                p.copy_(1 + 0.3 * noise)
            elif "dt_bias" in pname or "dt_proj.bias" in pname:
                p.add_(0.1 * noise)
            elif p.dim() >= 2 and "embed" in pname:
                p.copy_(0.5 * noise)
            else:
                p.add_(0.02 * noise)
    return model.to(torch.bfloat16)


def logits_of(model, tokens, dtype):
    m = model.to(dtype).cuda()
    with torch.no_grad():
        out = m(input_ids=tokens.cuda()).logits.float().cpu()
    model.cpu()
    return out


def megatron_checkpoint(model, spec, path):
    """The NemotronH model's weights under Megatron-core names, as torch.save writes them."""
    sd = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    pre = "backbone." if any(k.startswith("backbone.") for k in sd) else "model."
    emb = pre + ("embeddings.weight" if pre + "embeddings.weight" in sd else "embed_tokens.weight")
    out = OrderedDict()
    out["embedding.word_embeddings.weight"] = sd[emb]
    H, G, hd = spec["num_attention_heads"], spec["num_key_value_heads"], spec["head_dim"]
    for i, c in enumerate(spec["hybrid_override_pattern"]):
        L, M = f"{pre}layers.{i}.", f"decoder.layers.{i}."
        if c == "M":
            out[M + "norm.weight"] = sd[L + "norm.weight"]
            for n in ["in_proj.weight", "conv1d.weight", "conv1d.bias", "A_log", "D", "dt_bias", "norm.weight", "out_proj.weight"]:
                out[M + "mixer." + n] = sd[L + "mixer." + n]
            out[M + "mixer.in_proj._extra_state"] = io.BytesIO(b"te-extra-state")
        elif c == "*":
            q = sd[L + "mixer.q_proj.weight"].view(G, H // G * hd, -1)
            k = sd[L + "mixer.k_proj.weight"].view(G, hd, -1)
            v = sd[L + "mixer.v_proj.weight"].view(G, hd, -1)
            out[M + "self_attention.linear_qkv.layer_norm_weight"] = sd[L + "norm.weight"]
            out[M + "self_attention.linear_qkv.weight"] = torch.cat([q, k, v], dim=1).reshape(-1, q.shape[-1]).contiguous()
            out[M + "self_attention.linear_proj.weight"] = sd[L + "mixer.o_proj.weight"]
            out[M + "self_attention.linear_qkv._extra_state"] = None
        else:
            out[M + "mlp.linear_fc1.layer_norm_weight"] = sd[L + "norm.weight"]
            out[M + "mlp.linear_fc1.weight"] = sd[L + "mixer.up_proj.weight"]
            out[M + "mlp.linear_fc2.weight"] = sd[L + "mixer.down_proj.weight"]
    out["decoder.final_norm.weight"] = sd[pre + "norm_f.weight" if pre + "norm_f.weight" in sd else pre + "norm.weight"]
    out["output_layer.weight"] = sd["lm_head.weight"]
    args = argparse.Namespace(
        hidden_size=spec["hidden_size"], num_layers=len(spec["hybrid_override_pattern"]),
        hybrid_override_pattern=spec["hybrid_override_pattern"], num_attention_heads=H, group_query_attention=True,
        num_query_groups=G, kv_channels=hd, ffn_hidden_size=spec["intermediate_size"], squared_relu=True, swiglu=False,
        normalization="RMSNorm", norm_epsilon=1e-5, position_embedding_type="none", mamba_state_dim=spec["ssm_state_size"],
        mamba_head_dim=spec["mamba_head_dim"], mamba_num_groups=spec["n_groups"], untie_embeddings_and_output_weights=True,
        add_bias_linear=False, seq_length=512, padded_vocab_size=spec["vocab_size"], params_dtype=torch.bfloat16,
        tensor_model_parallel_size=1)
    rng = {"random_rng_state": random.getstate(), "np_rng_state": np.random.get_state(),
           "torch_rng_state": torch.get_rng_state(), "cuda_rng_state": torch.cuda.get_rng_state()}
    ckpt = {"args": args, "checkpoint_version": 3.0, "iteration": 0, "model": out, "rng_state": [rng]}
    os.makedirs(os.path.join(path, "release", "mp_rank_00"), exist_ok=True)
    with open(os.path.join(path, "latest_checkpointed_iteration.txt"), "w") as f:
        f.write("release")
    torch.save(ckpt, os.path.join(path, "release", "mp_rank_00", "model_optim_rng.pt"))


def main():
    out = sys.argv[1]
    work = os.path.join("/tmp", "interop-models")
    os.makedirs(work, exist_ok=True)
    import transformers
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, seed {SEED}", flush=True)
    summary = {}
    for name, spec in CONFIGS.items():
        try:
            model = build(name, spec)
            d = os.path.join(work, name)
            model.save_pretrained(d, safe_serialization=True)
            g = torch.Generator().manual_seed(SEED + 7)
            tokens = torch.randint(0, spec["vocab_size"], (BATCH, SEQ), generator=g)
            ref32 = logits_of(model, tokens, torch.float32)
            ref16 = logits_of(model, tokens, torch.bfloat16)
            np.save(os.path.join(d, "tokens.npy"), tokens.numpy().astype(np.int32))
            np.save(os.path.join(d, "ref_logits_f32.npy"), ref32.numpy())
            rel16 = float((ref16 - ref32).norm() / ref32.norm())
            summary[name] = {"class": spec["cls"], "hf_bf16_vs_f32_rel": rel16, "logit_rms": float(ref32.pow(2).mean().sqrt()),
                             "tensors": sorted(model.state_dict().keys())[:6]}
            print(f"{name}: saved; transformers bf16 vs f32 rel err {rel16:.3e}", flush=True)
            if name == "nemotron_h":
                megatron_checkpoint(model, spec, os.path.join(work, "megatron_hybrid"))
                print("megatron_hybrid: saved", flush=True)
        except Exception as e:  # keep going: one class failing must not hide the others
            import traceback
            traceback.print_exc()
            summary[name] = {"error": repr(e)}
    with open(os.path.join(work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    # one tar per model: what comes back from the machine is at most 16 MiB a file
    for entry in sorted(os.listdir(work)):
        with tarfile.open(os.path.join(out, f"{entry.replace('.json', '')}.tar"), "w") as t:
            t.add(os.path.join(work, entry), arcname=f"models/{entry}")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
