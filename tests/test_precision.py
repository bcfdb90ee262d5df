"""``train.precision`` (bench/training/precision.py): part of the spec and its hash, validated, recorded as what ran;
bf16 autocast reaches the forward in training and evaluation while weights and optimiser state stay fp32;
every backbone loads in fp32 whatever its checkpoint stores."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from bench.backbones.load import load_backbone
from bench.cli import main
from bench.errors import InputError
from bench.planning.plan import RunRequest, plan
from bench.spec import TrainConfig
from bench.training.optim import trainable_parameters
from bench.training.precision import PrecisionUnavailable, autocast, math_mode, resolve
from bench.training.trainer import LoopInputs, train_and_evaluate
from methods.registry import list_methods
from tests.test_methods_train import EXAMPLES, _build

CPU = torch.device("cpu")


def _request(data_dir, precision: str) -> RunRequest:
    return RunRequest(
        suite="glue",
        tasks=["rte"],
        methods=["pt"],
        seeds=[1],
        preset="quick",
        data_dir=str(data_dir),
        overrides={"train": {"precision": precision}},
    )


def test_each_precision_is_its_own_run(data_dir):
    ids = {p: plan(_request(data_dir, p))[0].run_id for p in ("fp32", "tf32", "bf16")}
    assert len(set(ids.values())) == 3
    assert plan(_request(data_dir, "fp32"))[0].train["precision"] == "fp32"


def test_bad_precision_is_one_line_naming_it_and_the_choices(capsys):
    assert main(["run", "--methods", "pt", "--set", "train.precision=fp16"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "train.precision='fp16' is not allowed" in err and "fp32, tf32, bf16" in err, err
    with pytest.raises(InputError, match="train.precision='fp16' must be one of fp32, tf32, bf16"):
        TrainConfig(precision="fp16").validate()


def test_tf32_on_a_cpu_runs_fp32_and_says_so():
    run = resolve("tf32", CPU)
    assert (run.requested, run.ran) == ("tf32", "fp32") and "TF32" in run.note
    assert resolve("bf16", CPU).record(CPU) == {
        "precision": "bf16",
        "precision_requested": "bf16",
        "precision_note": None,
    }


def test_gpu_capability_decides_tf32_and_bf16(monkeypatch):
    """An Ampere+ GPU runs both; an older one runs tf32 as fp32 and refuses bf16. TF32 flags are on only for
    a tf32 run, and restored afterwards."""
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    assert resolve("tf32", cuda).ran == "fp32"
    with pytest.raises(PrecisionUnavailable, match="train.precision='bf16' cannot run on cuda.*V100 is 7.0"):
        resolve("bf16", cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with math_mode(resolve("tf32", cuda), cuda):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    with math_mode(resolve("fp32", cuda), cuda):
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    assert resolve("tf32", cuda).record(cuda)["tf32_matmul"] is True


class _Task:
    selection_metric = "accuracy"

    @staticmethod
    def label_strings() -> list[str]:
        return ["0", "1"]

    @staticmethod
    def compute_metrics(predictions, references) -> dict[str, float]:
        return {
            "accuracy": 100.0
            * sum(p == r for p, r in zip(predictions, references, strict=True))
            / len(references)
        }


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_autocast_reaches_training_and_evaluation_and_weights_stay_fp32(tiny_model_dir, precision):
    """Linear outputs are bf16 in training and evaluation forwards of a bf16 run (fp32 in an fp32 run);
    after training every parameter and every AdamW moment is still fp32."""
    backbone, method = _build(tiny_model_dir, "pt", num_tokens="4")
    split = backbone.encode(EXAMPLES, ["0", "1"])
    seen: dict[bool, set[torch.dtype]] = {True: set(), False: set()}
    linear = next(m for m in backbone.model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda mod, args, out: seen[mod.training].add(out.dtype))
    optimizers = []
    real = torch.optim.AdamW

    def spy(*args, **kwargs):
        optimizers.append(real(*args, **kwargs))
        return optimizers[-1]

    train = TrainConfig(
        batch_size=4, max_steps=3, warmup_steps=0, eval_every=3, max_length=24, precision=precision
    )
    train.eval_mode = "score" if backbone.family != "encoder" else "generate"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim, "AdamW", spy)
        result = train_and_evaluate(LoopInputs(backbone, _Task(), split, split, split, train, 0, CPU))
    expected = torch.bfloat16 if precision == "bf16" else torch.float32
    assert seen == {True: {expected}, False: {expected}}
    assert result.final_loss is not None and torch.isfinite(torch.tensor(result.final_loss))
    modules = backbone.trainable_modules()  # the model, then the method
    assert {p.dtype for m in modules for p in m.parameters()} == {torch.float32}
    moments = [t for opt in optimizers for s in opt.state.values() for t in s.values() if t.dim() > 0]
    assert moments and {t.dtype for t in moments} == {torch.float32}


def test_a_bf16_checkpoint_loads_in_fp32(tiny_bert_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir).to(torch.bfloat16)
    model.save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (tiny_bert_dir / name).exists():
            shutil.copy(tiny_bert_dir / name, tmp_path / name)
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "bfloat16"
    backbone = load_backbone(str(tmp_path), ["0", "1"], 16)
    assert {p.dtype for p in backbone.model.parameters()} == {torch.float32}


@pytest.mark.slow
def test_bench_run_records_what_each_precision_ran(tiny_t5_dir, data_dir, tmp_path):
    """Through the CLI on CPU: fp32 as before, tf32 recorded as fp32 (same numbers as fp32), bf16 recorded
    as bf16 with other numbers, and its trained tensors (the artifact) still fp32."""
    args = [
        "run",
        "--suite",
        "glue",
        "--tasks",
        "rte",
        "--methods",
        "pt",
        "--preset",
        "quick",
        "--seeds",
        "3",
    ]
    args += [
        "--model",
        str(tiny_t5_dir),
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path),
        "--max-steps",
        "4",
    ]
    args += ["--max-train-samples", "16", "--sweep", "train.precision=fp32,tf32,bf16"]
    for setting in ("max_eval_samples=8", "eval_every=2", "batch_size=4", "max_length=32"):
        args += ["--set", f"train.{setting}"]
    assert main([*args, "--set", "pt.num_tokens=4"]) == 0
    records = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    by = {r["spec"]["train"]["precision"]: r for r in records}
    assert set(by) == {"fp32", "tf32", "bf16"}
    for requested, rec in by.items():
        env = rec["env"]
        assert rec["status"] == "ok", rec["error"]
        assert env["precision_requested"] == requested
        assert env["precision"] == ("fp32" if requested == "tf32" else requested)
        assert (env["precision_note"] is None) == (requested != "tf32")
        assert env["dtype"] == "float32" and set(env["param_dtypes"]) == {"float32"}
        saved = load_file(tmp_path / rec["artifact"])
        assert saved and {t.dtype for t in saved.values() if t.is_floating_point()} == {torch.float32}
    assert by["tf32"]["final_loss"] == by["fp32"]["final_loss"]  # a CPU has no TF32: the same arithmetic
    assert by["bf16"]["final_loss"] != by["fp32"]["final_loss"]  # autocast changed the arithmetic


def test_autocast_is_a_no_op_for_fp32_and_tf32():
    x = torch.ones(2, 2)
    for precision in ("fp32", "tf32"):
        with autocast(precision, CPU):
            assert (x @ x).dtype == torch.float32
    with autocast("bf16", CPU):
        assert (x @ x).dtype == torch.bfloat16


@pytest.mark.parametrize("method_name", list_methods())
def test_every_method_steps_under_bf16_autocast(tiny_model_dir, method_name):
    """One bf16 training step of every method on every backbone family: no dtype clash between fp32 method
    tensors and bf16 activations, a finite loss, fp32 gradients on every trainable tensor."""
    backbone, _ = _build(tiny_model_dir, method_name)
    backbone.train(True)
    split = backbone.encode(EXAMPLES[:4], ["0", "1"])
    params = trainable_parameters(backbone)
    with autocast("bf16", CPU):
        loss = backbone.loss(split.batch(slice(None)))
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in params if p.grad is not None]
    assert grads and {g.dtype for g in grads} == {torch.float32}
