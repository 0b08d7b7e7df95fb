"""A tiny, randomly initialised emotion2vec model directory, for tests (no weights exist offline).

``build_tiny_emotion2vec(out_dir)`` writes a model directory with the same file
layout and config format as ``iic/emotion2vec_plus_large`` (config.yaml,
configuration.json, model.pt, tokens.txt) but with a few tiny layers, so that
FunASR's real loading path (``funasr.AutoModel(model=<dir>)``) can be exercised
offline. Only the sizes differ from the real model; keys are the real ones.

Run with a Python that has funasr installed::

    python -m ser_backend_emotion2vec.tiny [out_dir]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Label order and names exactly as in the released emotion2vec+ tokens.txt.
TOKENS = [
    "生气/angry",
    "厌恶/disgusted",
    "恐惧/fearful",
    "开心/happy",
    "中立/neutral",
    "其他/other",
    "难过/sad",
    "吃惊/surprised",
    "<unk>",
]

# Same stride pattern as the real feature encoder (total stride 320 at 16 kHz
# -> 50 frames/s), but 32 channels instead of 512.
TINY_FEATURE_ENCODER_SPEC = "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] + [(32, 2, 2)]"


def _config_yaml(embed_dim: int, depth: int, heads: int, prenet_depth: int) -> str:
    """Return config.yaml text in the format of the released emotion2vec models."""
    return f"""\
# network architecture (tiny, random weights; format of iic/emotion2vec_plus_*)
model: Emotion2vec
model_conf:
    loss_beta: 0.0
    loss_scale: null
    depth: {depth}
    start_drop_path_rate: 0.0
    end_drop_path_rate: 0.0
    num_heads: {heads}
    norm_eps: 1e-05
    norm_affine: true
    encoder_dropout: 0.1
    post_mlp_drop: 0.1
    attention_dropout: 0.1
    activation_dropout: 0.0
    dropout_input: 0.0
    layerdrop: 0.05
    embed_dim: {embed_dim}
    mlp_ratio: 4.0
    layer_norm_first: false
    average_top_k_layers: {depth}
    end_of_block_targets: false
    clone_batch: 8
    layer_norm_target_layer: false
    batch_norm_target_layer: false
    instance_norm_target_layer: true
    instance_norm_targets: false
    layer_norm_targets: false
    ema_decay: 0.999
    ema_same_dtype: true
    log_norms: true
    ema_end_decay: 0.99999
    ema_anneal_end_step: 20000
    ema_encoder_only: false
    max_update: 100000
    extractor_mode: layer_norm
    shared_decoder: null
    min_target_var: 0.1
    min_pred_var: 0.01
    supported_modality: AUDIO
    mae_init: false
    seed: 1
    skip_ema: false
    cls_loss: 1.0
    recon_loss: 0.0
    d2v_loss: 1.0
    decoder_group: false
    adversarial_training: false
    adversarial_hidden_dim: 128
    adversarial_weight: 0.1
    cls_type: chunk
    normalize: true
    modalities:
        audio:
            type: AUDIO
            prenet_depth: {prenet_depth}
            prenet_layerdrop: 0.05
            prenet_dropout: 0.1
            start_drop_path_rate: 0.0
            end_drop_path_rate: 0.0
            num_extra_tokens: 10
            init_extra_token_zero: true
            mask_noise_std: 0.01
            mask_prob_min: null
            mask_prob: 0.5
            inverse_mask: false
            mask_prob_adjust: 0.05
            keep_masked_pct: 0.0
            mask_length: 5
            add_masks: false
            remove_masks: false
            mask_dropout: 0.0
            encoder_zero_mask: true
            mask_channel_prob: 0.0
            mask_channel_length: 64
            ema_local_encoder: false
            local_grad_mult: 1.0
            use_alibi_encoder: true
            alibi_scale: 1.0
            learned_alibi: false
            alibi_max_pos: null
            learned_alibi_scale: true
            learned_alibi_scale_per_head: true
            learned_alibi_scale_per_layer: false
            num_alibi_heads: {heads}
            model_depth: {depth}
            decoder:
                decoder_dim: 16
                decoder_groups: 4
                decoder_kernel: 7
                decoder_layers: 1
                input_dropout: 0.1
                add_positions_masked: false
                add_positions_all: false
                decoder_residual: true
                projection_layers: 1
                projection_ratio: 2.0
            extractor_mode: layer_norm
            feature_encoder_spec: '{TINY_FEATURE_ENCODER_SPEC}'
            conv_pos_width: 16
            conv_pos_groups: 4
            conv_pos_depth: 2
            conv_pos_pre_ln: false

tokenizer: CharTokenizer
tokenizer_conf:
    unk_symbol: <unk>
    split_with_space: true
"""


# configuration.json as shipped in ModelScope model dirs; FunASR resolves the
# paths in file_path_metas relative to the model dir.
CONFIGURATION_JSON = {
    "framework": "pytorch",
    "task": "emotion-recognition",
    "model": {"type": "funasr"},
    "pipeline": {"type": "funasr-pipeline"},
    "model_name_in_hub": {"ms": "", "hf": ""},
    "file_path_metas": {
        "init_param": "model.pt",
        "config": "config.yaml",
        "tokenizer_conf": {"token_list": "tokens.txt"},
    },
}


def build_tiny_emotion2vec(
    out_dir: str | Path,
    *,
    embed_dim: int = 32,
    depth: int = 2,
    heads: int = 2,
    prenet_depth: int = 1,
    seed: int = 0,
    with_configuration_json: bool = True,
) -> Path:
    """Write a tiny random emotion2vec model dir loadable by funasr.AutoModel.

    Files written: config.yaml, tokens.txt, model.pt (plain state_dict of
    funasr's Emotion2vec incl. the 9-way ``proj`` head) and, by default,
    configuration.json. Returns the directory path.
    """
    import torch
    from funasr.models.emotion2vec.model import Emotion2vec
    from omegaconf import OmegaConf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config_text = _config_yaml(embed_dim, depth, heads, prenet_depth)
    (out / "config.yaml").write_text(config_text, encoding="utf-8")
    (out / "tokens.txt").write_text("\n".join(TOKENS), encoding="utf-8")
    if with_configuration_json:
        (out / "configuration.json").write_text(json.dumps(CONFIGURATION_JSON, indent=4), encoding="utf-8")

    # Instantiate FunASR's own class so state-dict keys and shapes match
    # exactly; vocab_size creates the classification head ``proj``.
    cfg = OmegaConf.to_container(OmegaConf.create(config_text), resolve=True)
    torch.manual_seed(seed)
    model = Emotion2vec(model_conf=cfg["model_conf"], vocab_size=len(TOKENS))
    torch.save(model.state_dict(), out / "model.pt")
    return out


def _main() -> None:
    t0 = time.perf_counter()
    import funasr  # imports every funasr submodule (a few seconds)

    print(f"import funasr: {time.perf_counter() - t0:.2f}s")
    t0 = time.perf_counter()
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "tiny_e2v"
    build_tiny_emotion2vec(out_dir)
    size_kb = sum(p.stat().st_size for p in out_dir.iterdir()) / 1024
    print(f"built {out_dir} ({size_kb:.0f} KiB): {sorted(p.name for p in out_dir.iterdir())}")
    print(f"build: {time.perf_counter() - t0:.2f}s")

    t0 = time.perf_counter()
    model = funasr.AutoModel(model=str(out_dir), disable_update=True, device="cpu")
    print(f"AutoModel load: {time.perf_counter() - t0:.2f}s  class={type(model.model).__name__}")

    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(3 * 16000)).astype(np.float32)  # 3.0 s @ 16 kHz

    for granularity in ("utterance", "frame"):
        t0 = time.perf_counter()
        res = model.generate(wav, granularity=granularity, extract_embedding=True)
        dt = time.perf_counter() - t0
        r = res[0]
        print(f"\n[{granularity}] generate: {dt:.2f}s  type={type(res).__name__} len={len(res)}")
        print(f"  keys={sorted(r)}  key={r['key']!r}")
        feats = r["feats"]
        print(f"  feats: {type(feats).__name__} shape={feats.shape} dtype={feats.dtype}")
        print(f"  labels={r['labels']}")
        print(f"  scores={[round(s, 4) for s in r['scores']]} sum={sum(r['scores']):.4f}")

    res = model.generate(wav, granularity="utterance", extract_embedding=False)
    print(f"\n[extract_embedding=False] keys={sorted(res[0])}")


if __name__ == "__main__":
    _main()
