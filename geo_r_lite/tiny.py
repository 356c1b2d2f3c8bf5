"""Tiny, randomly initialised Qwen2-VL / Qwen2.5-VL / Qwen3-VL models built fully offline, for tests.

No model hub is needed: the tokenizer is a real byte-level BPE (``tokenizers``) trained on a small
built-in corpus and carrying Qwen's special tokens and the Qwen2-VL chat template (the vision tokens
every family's template uses); processors and models are transformers' own classes of each family
with a few tiny layers. ``build_tiny_model(folder, family=...)`` saves an ordinary model folder that
loads back through ``geo_r_lite.model.load_model`` exactly like ``Qwen/Qwen2-VL-2B-Instruct`` does for
users. ``model.name``: ``tiny`` (Qwen2-VL), ``tiny-qwen2.5-vl``, ``tiny-qwen3-vl``.

The build is deterministic: same folder contents (weights included) for the same seed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

TINY_MODEL_NAME = "tiny"
DEFAULT_TINY_DIR = Path(os.environ.get("GEO_R_LITE_CACHE", Path.home() / ".cache" / "geo_r_lite")) / "tiny-qwen2-vl"

# Qwen2-VL's special tokens, in the order of the real vocabulary's added tokens.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# The chat template shipped with Qwen/Qwen2-VL-2B-Instruct.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen3-VL's template lays messages out the same way but adds no default system message.
CHAT_TEMPLATE_QWEN3 = CHAT_TEMPLATE.replace(
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}", "")
assert CHAT_TEMPLATE_QWEN3 != CHAT_TEMPLATE

# Text the BPE merges are learnt from: the words our prompts and answers use, so that sequences
# stay short (the toy learning check trains on them).
_CORPUS = [
    "You are a helpful assistant. Where was this photo taken? Look at the image and reason step by step.",
    "<think> Working down the chain of region: continent, country, region, city, then coordinates. </think>",
    "<answer> Continent: Country: Region: City: Coordinates: ( , ) </answer> Unknown",
    "Africa Antarctica Asia Europe North America Oceania South America",
    "United States United Kingdom France Germany Japan China Brazil Australia Canada India Kenya Peru",
    "California Texas New York Ontario Ile-de-France England Tokyo Bavaria Sao Paulo Nairobi Lima",
    "Paris London Berlin Tokyo Sydney Toronto Cairo Mumbai Moscow Rome Madrid Beijing Lagos Quito",
    "0 1 2 3 4 5 6 7 8 9 0.0 1.5 -12.34 45.678 -123.4567 90 180 . , - ( ) : N S E W °",
]


def _build_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _text_config(tokenizer, ids: dict[str, int], family: str) -> dict:
    head_dim = 16  # hidden 64 / 4 heads; mrope sections must sum to head_dim / 2
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}
    if family == "qwen3_vl":
        rope["mrope_interleaved"] = True
    text = {
        "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
        "rope_parameters": rope, "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": False,
    }
    if family == "qwen3_vl":
        text["head_dim"] = head_dim
    assert sum(rope["mrope_section"]) == head_dim // 2
    return text


def _vision_config(family: str) -> dict:
    """Tiny vision towers with each family's real geometry (patch x merge) and block layout."""
    if family == "qwen2_vl":
        return {"depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2,
                "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    if family == "qwen2_5_vl":  # windowed attention with one full-attention block, gated MLP
        return {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
                "fullatt_block_indexes": [1]}
    # qwen3_vl: 16 px patches, learnt position embeddings (a square grid), deepstack features
    return {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
            "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0, 1]}


def _classes(family: str):
    """(config class, model class, processor class, video processor) of a family."""
    import transformers as tf

    if family == "qwen2_vl":
        return tf.Qwen2VLConfig, tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLProcessor, tf.Qwen2VLVideoProcessor()
    if family == "qwen2_5_vl":
        return (tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLForConditionalGeneration, tf.Qwen2_5_VLProcessor,
                tf.Qwen2VLVideoProcessor())
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    return tf.Qwen3VLConfig, tf.Qwen3VLForConditionalGeneration, tf.Qwen3VLProcessor, Qwen3VLVideoProcessor()


def build_tiny_model(folder: str | Path, *, family: str = "qwen2_vl", seed: int = 0, vocab_size: int = 1024,
                     overwrite: bool = False) -> Path:
    """Build a tiny model of ``family`` (model, tokenizer, processors) and save it in ``folder``.

    ``family``: ``qwen2_vl`` (default), ``qwen2_5_vl`` or ``qwen3_vl``. Each has its family's
    config, model and processor classes and vision geometry (``geo_r_lite.families``), with a few
    tiny layers. Returns the folder; an existing complete build is reused unless ``overwrite``.
    """
    import torch
    from transformers import Qwen2VLImageProcessor

    from geo_r_lite.families import family_of

    fam = family_of(family)
    folder = Path(folder)
    marker = folder / "geo_r_lite_tiny.json"
    if marker.is_file() and not overwrite:
        return folder
    folder.mkdir(parents=True, exist_ok=True)

    tokenizer = _build_tokenizer(vocab_size)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config_cls, model_cls, processor_cls, video_processor = _classes(family)
    # Pixel budget of the real processor's defaults would make tests slow; keep images small.
    # A size dict, not min_pixels/max_pixels: given those, the constructor writes into the class's
    # own default size dict, and every later Qwen2VLImageProcessor() in the process inherits it.
    step = fam.pixel_step
    image_processor = Qwen2VLImageProcessor(size={"shortest_edge": 16 * step * step, "longest_edge": 64 * step * step},
                                            patch_size=fam.patch_size, merge_size=fam.merge_size)
    template = CHAT_TEMPLATE_QWEN3 if family == "qwen3_vl" else CHAT_TEMPLATE
    processor = processor_cls(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
                              chat_template=template)
    config = config_cls(
        text_config=_text_config(tokenizer, ids, family),
        vision_config=_vision_config(family),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = model_cls(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    marker.write_text(json.dumps({"seed": seed, "vocab_size": len(tokenizer), "family": family}), encoding="utf-8")
    logger.info("built tiny %s in %s", fam.title, folder)
    return folder


def ensure_tiny_model(folder: str | Path | None = None, *, family: str = "qwen2_vl") -> Path:
    """Return the tiny model folder of ``family``, building it on first use (a few seconds, offline)."""
    default = DEFAULT_TINY_DIR if family == "qwen2_vl" else DEFAULT_TINY_DIR.parent / f"tiny-{family}"
    return build_tiny_model(folder or default, family=family)
