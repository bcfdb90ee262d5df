"""Write a random-init copy of a shipped model config (e.g. T5-Base) with the packaged MiniLM tokenizer.

No T5 weights can be downloaded offline, but step time and memory depend on shapes, not on weight values: this
folder lets ``bench perf --model FOLDER`` time the papers' backbone shapes. Its accuracy means nothing. The
vocabulary is the MiniLM tokenizer's (30,522 rows instead of T5's 32,128; [SEP] ends targets).

    python -m scripts.random_init_model t5-base /tmp/t5-base-random
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

from bench.backbones.models import ALIASES

CONFIGS = Path(__file__).resolve().parents[1] / "bench" / "model_configs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", choices=sorted(p.stem for p in CONFIGS.glob("t5-*.json")))
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(ALIASES["minilm"].local_dir)
    config = AutoConfig.from_pretrained(CONFIGS / f"{args.config}.json")
    config.vocab_size, config.eos_token_id, config.pad_token_id = len(tokenizer), tokenizer.sep_token_id, 0
    torch.manual_seed(0)
    AutoModelForSeq2SeqLM.from_config(config).save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
