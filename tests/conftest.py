"""Shared fixtures: the real data folder and tiny random-init backbones saved as local model folders.

No T5 weights can be had offline, so T5 paths are tested on a 2-layer T5 built from a config; the tokenizer
of both tiny models is the packaged MiniLM's (vocab 30,522), so the same loading code as for real models runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("BENCH_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not (path / "glue").is_dir():
        pytest.fail(f"real GLUE/SuperGLUE data not found at {path}; set BENCH_DATA_DIR")
    return path


def _minilm_dir() -> Path:
    from bench.backbones.models import ALIASES

    return Path(ALIASES["minilm"].local_dir)


def _save_tiny(model, out: Path) -> Path:
    from transformers import AutoTokenizer

    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(_minilm_dir()).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory) -> Path:
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=30522,
        d_model=32,
        d_ff=64,
        d_kv=16,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=102,  # the MiniLM tokenizer's [SEP] ends targets
        decoder_start_token_id=0,
        dropout_rate=0.0,
    )
    return _save_tiny(T5ForConditionalGeneration(config), tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.3,  # large enough that [CLS] depends on the input in a random model
    )
    return _save_tiny(BertForSequenceClassification(config), tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def t5_base():
    """T5-Base built from its shipped config on the meta device (no weights): for parameter counts."""
    from bench.backbones.load import meta_backbone

    return meta_backbone("t5-base", 256)


@pytest.fixture(params=["t5", "bert", "llama"])
def tiny_model_dir(request) -> Path:
    """Each backbone family in turn: seq2seq (T5), encoder (BERT), decoder-only (Llama)."""
    return request.getfixturevalue(f"tiny_{request.param}_dir")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """A 2-layer random-init Llama (RoPE, RMSNorm, GQA) with the MiniLM tokenizer, [SEP] as its EOS."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=30522,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=0,
        eos_token_id=102,
        bos_token_id=101,
        tie_word_embeddings=True,
        initializer_range=0.2,  # large enough that the output depends on the input in a random model
    )
    out = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(_minilm_dir())
    tokenizer.eos_token = "[SEP]"
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture
def make_spec(data_dir):
    """The one factory of a RunSpec for a run on a tiny model: ``make_spec(model_dir, **overrides)``.

    It plans (``bench.planning.plan.plan``) the quick preset on real GLUE data cut to 32 training examples: one
    ``task`` (default RTE), one ``method`` (default PT, 4 prompt tokens), one ``seed`` (default 42),
    ``steps`` training steps (default 6). ``train`` is a dict of training settings and further keywords are
    single settings that override it (values as the CLI's ``--set`` takes them, turned into strings);
    ``method_config`` replaces the default method settings; ``out`` is the results folder in which source
    prompts are looked up. The planned spec must be exactly one (a source run still to train is an error).
    """
    from bench.planning.plan import RunRequest, plan

    def make(
        model_dir,
        *,
        method: str = "pt",
        task: str = "rte",
        seed: int = 42,
        steps: int = 6,
        train: dict | None = None,
        method_config: dict | None = None,
        out=None,
        **settings,
    ):
        request = RunRequest(
            suite="glue",
            tasks=[task],
            methods=[method],
            seeds=[seed],
            preset="quick",
            model=str(model_dir),
            data_dir=str(data_dir),
            max_steps=steps,
            max_train_samples=32,
            overrides={
                "train": {k: str(v) for k, v in {**(train or {}), **settings}.items()},
                method: method_config or {"num_tokens": "4"},
            },
            out=str(out) if out else None,
        )
        (spec,) = plan(request)
        return spec

    return make


@pytest.fixture(autouse=True)
def _screen_width(monkeypatch):
    """Tests render with a console (and argparse help) whose width they set, so a table's layout does not
    depend on the terminal (or its absence) that runs pytest. Messages print whole at any width anyway (``bench/terminal.py``);
    ``tests/test_terminal.py`` checks that at 40, 80 and 250 columns."""
    from bench import cli

    monkeypatch.setenv("COLUMNS", "250")  # argparse wraps --help at $COLUMNS
    monkeypatch.setattr(cli, "console", cli.make_console())
    cli.console.width = 250


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (real models, several processes, a server, the browser, LaTeX) are collected first,
    so that under ``pytest -n 2`` (.ci/run) the long ones run beside the many short ones instead of after them.
    Ordered on the marker, not on a list of file names, which drifts as tests move. A test that takes minutes
    says so, ``pytest.mark.slow(minutes=4)``, and the longest start first (a long test started last makes the
    run as long as itself after everything else); the sort is stable otherwise."""

    def key(item):
        slow = item.get_closest_marker("slow")
        return (slow is None, -(slow.kwargs.get("minutes", 0) if slow else 0))

    items.sort(key=key)


def pytest_configure(config):
    """Under xdist each worker (and every process it starts) uses one thread: two workers on two cores, not four."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
