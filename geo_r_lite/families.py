"""Everything that differs between the Qwen vision-language families, in one table.

    family = family_of("qwen3_vl")       # by the model config's ``model_type``
    family.pixel_step                    # image sides are multiples of this (patch x merge)
    family.lora_targets(vision=True)     # peft target regex for the language (and vision) layers

Families: Qwen2-VL (``qwen2_vl``), Qwen2.5-VL (``qwen2_5_vl``, the model Geo-R trains) and Qwen3-VL
(``qwen3_vl``). Module names are transformers 5's. Pure Python: no torch or transformers import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_LANGUAGE = r"model\.language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"


@dataclass(frozen=True)
class Family:
    """One model family: how its images are cut and which of its modules LoRA adapts."""

    model_type: str
    title: str
    processor: str  # the transformers processor class its checkpoints load with
    patch_size: int
    merge_size: int
    vision_lora: str  # regex of the vision blocks' attention and MLP projections
    vllm: bool  # served by Unsloth's vLLM generation (model.fast_inference)
    tiny_name: str  # model.name that builds this family's tiny offline model
    # Unsloth's pre-quantised 4-bit repositories of the instruct checkpoints (hub id -> repo).
    unsloth_4bit: dict[str, str] = field(default_factory=dict)

    @property
    def pixel_step(self) -> int:
        """Image sides must be multiples of this many pixels (patch size x spatial merge)."""
        return self.patch_size * self.merge_size

    def lora_targets(self, *, language: bool = True, vision: bool = False) -> str:
        """The peft ``target_modules`` regex for the language and/or vision layers."""
        parts = [p for p, on in ((_LANGUAGE, language), (self.vision_lora, vision)) if on]
        if not parts:
            raise ValueError("LoRA needs the language or the vision layers")
        return "|".join(f"(?:{p})" for p in parts)


FAMILIES = {
    f.model_type: f
    for f in (
        Family("qwen2_vl", "Qwen2-VL", "Qwen2VLProcessor", 14, 2,
               r"model\.visual\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2))", vllm=False, tiny_name="tiny",
               unsloth_4bit={"Qwen/Qwen2-VL-2B-Instruct": "unsloth/Qwen2-VL-2B-Instruct-bnb-4bit",
                             "Qwen/Qwen2-VL-7B-Instruct": "unsloth/Qwen2-VL-7B-Instruct-bnb-4bit"}),
        Family("qwen2_5_vl", "Qwen2.5-VL", "Qwen2_5_VLProcessor", 14, 2,
               r"model\.visual\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(gate|up|down)_proj)", vllm=True,
               tiny_name="tiny-qwen2.5-vl",
               unsloth_4bit={"Qwen/Qwen2.5-VL-3B-Instruct": "unsloth/Qwen2.5-VL-3B-Instruct-bnb-4bit",
                             "Qwen/Qwen2.5-VL-7B-Instruct": "unsloth/Qwen2.5-VL-7B-Instruct-bnb-4bit"}),
        Family("qwen3_vl", "Qwen3-VL", "Qwen3VLProcessor", 16, 2,
               r"model\.visual\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.linear_fc(1|2))", vllm=True,
               tiny_name="tiny-qwen3-vl",
               unsloth_4bit={"Qwen/Qwen3-VL-2B-Instruct": "unsloth/Qwen3-VL-2B-Instruct-unsloth-bnb-4bit",
                             "Qwen/Qwen3-VL-4B-Instruct": "unsloth/Qwen3-VL-4B-Instruct-unsloth-bnb-4bit",
                             "Qwen/Qwen3-VL-8B-Instruct": "unsloth/Qwen3-VL-8B-Instruct-unsloth-bnb-4bit"}),
    )
}
TINY_NAMES = {f.tiny_name: f.model_type for f in FAMILIES.values()}


def family_of(model_type: str) -> Family:
    """The family of a config's ``model_type``; ValueError naming the supported ones."""
    try:
        return FAMILIES[model_type]
    except KeyError:
        raise ValueError(f"model type {model_type!r} is not supported; supported: "
                         f"{', '.join(f'{f.model_type} ({f.title})' for f in FAMILIES.values())}") from None


def family_of_name(name: str) -> Family | None:
    """The family a hub id or tiny name points to, guessed from the name (None when it says nothing)."""
    if name in TINY_NAMES:
        return FAMILIES[TINY_NAMES[name]]
    lowered = name.lower().replace("_", ".").replace("-", ".")
    for marker, model_type in (("qwen3.vl", "qwen3_vl"), ("qwen2.5.vl", "qwen2_5_vl"), ("qwen2.vl", "qwen2_vl")):
        if marker in lowered:
            return FAMILIES[model_type]
    return None
