"""``bench export --format folder``: every method, a folder that ``bench eval FOLDER`` re-evaluates exactly with the
results folder gone (SPoT with its source run's artifact inside), ``--verify`` on a transfer method's PEFT
adapter, and bad input (no PEFT twin, PEFT's placement not used, an unfinished run, an occupied output
folder) as one line with exit code 2 and nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bench.cli import main
from bench.results import record_path
from bench.run.reeval import find_record, rebuild
from tests.test_artifacts_eval import run_worker, train_for

pytestmark = pytest.mark.slow  # each case trains a tiny run (seconds)

NO_TWIN = {  # method -> a config for a tiny run
    "dept": {"num_tokens": "4"},
    "lpt": {"num_tokens": "4"},
    "adapter": {"lr": "1e-3"},
    "bitfit": {"lr": "1e-3"},
    "finetune": {"lr": "1e-4"},
}


def _run(capsys, tiny_bert_dir, make_spec, out, method="pt", config=None, task="rte", **train):
    spec = make_spec(
        tiny_bert_dir,
        method=method,
        task=task,
        method_config=config,
        out=out,
        train={**train_for(tiny_bert_dir), **train},
    )
    record = run_worker(spec, out)
    assert record["status"] == "ok", record["error"]
    capsys.readouterr()  # the run's progress bars are not the command's output
    return spec, record


@pytest.mark.parametrize("method", sorted(NO_TWIN))
def test_folder_export_reevaluates_without_the_results_folder(
    method, tiny_bert_dir, make_spec, tmp_path, capsys
):
    out, folder = tmp_path / "results", tmp_path / "export"
    spec, record = _run(
        capsys, tiny_bert_dir, make_spec, out, method, NO_TWIN[method], encoder_prompt_position="first"
    )
    assert (
        main(["export", spec.run_id, "--out", str(out), "--to", str(tmp_path / "x"), "--format", "peft"]) == 2
    )
    err = capsys.readouterr().err
    assert (
        err.startswith("bench: error: PEFT has no twin of")
        and "--format folder" in err
        and err.count("\n") == 1
    )
    assert not (tmp_path / "x").exists()
    assert main(["export", spec.run_id[:8], "--out", str(out), "--to", str(folder)]) == 0  # auto: the folder
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "ptbench-export-1" and config["run_id"] == spec.run_id
    assert config["method"] == method and config["backbone"] == str(tiny_bert_dir)
    shutil.rmtree(out)
    assert main(["eval", str(folder)]) == 0


def test_transfer_run_exports_its_source_and_a_verified_adapter(tiny_bert_dir, make_spec, tmp_path, capsys):
    out, folder, adapter = tmp_path / "results", tmp_path / "export", tmp_path / "adapter"
    first = {"encoder_prompt_position": "first"}
    source, _ = _run(capsys, tiny_bert_dir, make_spec, out, task="mrpc", **first)
    spec, record = _run(
        capsys, tiny_bert_dir, make_spec, out, "spot", {"num_tokens": "4", "source": "mrpc"}, **first
    )
    assert main(["export", spec.run_id, "--out", str(out), "--to", str(adapter), "--verify"]) == 0
    assert "predicts every test row as the run did" in capsys.readouterr().out
    assert json.loads((adapter / "adapter_config.json").read_text())["peft_type"] == "PROMPT_TUNING"
    assert main(["export", spec.run_id, "--out", str(out), "--to", str(folder), "--format", "folder"]) == 0
    assert (folder / "artifacts" / f"{source.run_id}.safetensors").is_file()
    # --verify fails (exit 1) when the adapter predicts otherwise: the run's head flipped before exporting.
    _flip_head(out / record["artifact"])
    assert (
        main(["export", spec.run_id, "--out", str(out), "--to", str(tmp_path / "flipped"), "--verify"]) == 1
    )
    assert "not reproduced" in capsys.readouterr().err
    shutil.rmtree(out)
    assert main(["eval", str(folder)]) == 0  # the folder alone, with its source's artifact
    # The folder's Python loader (docs/export.md) predicts the test rows as the run did.
    where, same = find_record(str(folder), Path("results"))
    backbone, task, _, test, train = rebuild(same, where)
    backbone.train(False)
    labels = task.label_strings()
    with torch.no_grad():
        predicted = backbone.predict(
            backbone.encode(test, labels).batch(slice(None)), train.eval_mode, labels
        )
    assert predicted == record["predictions"]["test"]["predicted"]
    _flip_head(folder / record["artifact"])  # the folder is what is evaluated: a change in it is caught
    assert main(["eval", str(folder)]) == 1


def _flip_head(artifact) -> None:
    tensors = load_file(str(artifact))
    tensors["head.0"] = -tensors["head.0"] * 50
    save_file(tensors, str(artifact))


def test_bad_input_is_one_line_and_writes_nothing(tiny_bert_dir, make_spec, tmp_path, capsys):
    out = tmp_path / "results"
    # PT after [CLS]: ptbench's own placement (the quick preset takes PEFT's, in front of [CLS])
    spec, record = _run(capsys, tiny_bert_dir, make_spec, out, encoder_prompt_position="after_cls")

    def fails(*argv: str, match: str) -> None:
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("bench: error:") and err.count("\n") == 1 and match in err, err

    fails(spec.run_id, "--out", str(out), "--to", str(tmp_path / "a"), "--format", "peft",
          match="train.encoder_prompt_position=first")  # fmt: skip
    fails(spec.run_id, "--out", str(out), "--to", str(tmp_path / "a"), "--format", "zip", match="'zip'")
    fails(spec.run_id, "--out", str(out), "--to", str(tmp_path / "a"), "--format", "folder", "--verify",
          match="bench eval FOLDER")  # fmt: skip
    fails("0" * 16, "--out", str(out), "--to", str(tmp_path / "a"), match="no run")
    assert not (tmp_path / "a").exists()
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    fails(spec.run_id, "--out", str(out), "--to", str(occupied), match="not an empty folder")
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"] and (
        occupied / "keep.txt"
    ).read_text() == "mine"
    path = record_path(out, spec)
    path.write_text(json.dumps({**record, "status": "failed", "error": "killed"}))
    fails(spec.run_id, "--out", str(out), "--to", str(tmp_path / "a"), match="not finished")
    assert not (tmp_path / "a").exists()


def test_eval_of_a_folder_not_written_by_export_is_bad_input(tmp_path, capsys):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"format": "something-else"}))
    assert main(["eval", str(folder)]) == 2
    assert "is not a folder written by bench export" in capsys.readouterr().err
    (folder / "config.json").write_text(json.dumps({"format": "ptbench-export-1", "run_id": "0" * 16}))
    assert main(["eval", str(folder)]) == 2  # no record.json
    assert "record.json is missing" in capsys.readouterr().err
