"""The self-describing export: a finished run as a folder that ``bench eval FOLDER`` re-evaluates.

Layout (``bench.artifact_file`` names the files; the folder is a one-run results folder, so the loader of
``bench eval`` reads it unchanged)::

    <out>/config.json                    format, run id (the spec hash), method, method config, backbone, task,
                                         the files
    <out>/record.json                    the run's record, byte for byte
    <out>/artifacts/<run_id>.safetensors the run's artifact (docs/records.md#saved-artifacts)
    <out>/artifacts/<src>.safetensors    the source runs' artifacts (SPoT, ATTEMPT, MPT built from runs)
    <out>/README.md                      what the folder is and how to load it
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.artifact_file import EXPORT_CONFIG, EXPORT_FORMAT, EXPORT_RECORD, artifact_relpath
from bench.errors import InputError
from bench.spec import RunSpec

README = """# ptbench run {run_id}

{method} on {suite}/{task}, seed {seed}, backbone `{model}`, exported by `bench export --format folder`.

* `config.json`: the method, its config, the backbone, the task, the run id (a hash of the full spec);
* `record.json`: the run's record (metrics, test predictions, the full spec);
* `{artifact}`: the trained tensors (safetensors; keys `method.*`, `head.*`, `model.*`, `prompt`).

Re-evaluate (dev and test metrics must equal the record's): `bench eval <this folder>`.
In Python::

    from pathlib import Path
    from bench.run.reeval import find_record, rebuild
    folder, record = find_record("<this folder>", Path("results"))  # a folder's own record.json
    backbone, task, dev, test, train = rebuild(record, folder)   # the trained backbone, method attached
    backbone.train(False)
    labels = task.label_strings()
    predictions = backbone.predict(backbone.encode(test, labels).batch(slice(None)), train.eval_mode, labels)
"""


def write_folder(record: dict, results_dir: Path, out: Path) -> list[Path]:
    """Write the folder for the finished ``record`` (its artifact under ``results_dir``); return the files.

    ``out`` must not exist or be empty (checked by the caller's ``check_out``); nothing is overwritten.
    """
    results_dir, out = Path(results_dir), Path(out)
    spec = RunSpec.from_dict(record["spec"])
    artifact = results_dir / record["artifact"]
    if not artifact.is_file():
        raise InputError(f"run {record['run_id']}: artifact {artifact} does not exist")
    sources = [e for e in spec.sources if e["kind"] == "run"]
    copies = {artifact: out / record["artifact"]}
    for entry in sources:
        local = results_dir / artifact_relpath(entry["run_id"])
        source = local if local.is_file() else Path(entry["path"])
        if not source.is_file():
            raise InputError(f"source run {entry['run_id']}: its artifact {source} does not exist")
        copies[source] = out / artifact_relpath(entry["run_id"])
    out.mkdir(parents=True, exist_ok=True)
    for source, target in copies.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    (out / EXPORT_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    config = {
        "format": EXPORT_FORMAT,
        "run_id": record["run_id"],
        "method": spec.method,
        "method_config": spec.method_config,
        "backbone": spec.model,
        "suite": spec.suite,
        "task": spec.task,
        "seed": spec.seed,
        "artifact": record["artifact"],
        "sources": [artifact_relpath(e["run_id"]) for e in sources],
        "file_sources": [e["path"] for e in spec.sources if e["kind"] == "file"],
    }
    (out / EXPORT_CONFIG).write_text(json.dumps(config, indent=1) + "\n")
    (out / "README.md").write_text(
        README.format(
            run_id=record["run_id"], method=spec.method, suite=spec.suite, task=spec.task, seed=spec.seed,
            model=spec.model, artifact=record["artifact"],
        )
    )  # fmt: skip
    return [out / EXPORT_CONFIG, out / EXPORT_RECORD, *copies.values(), out / "README.md"]
