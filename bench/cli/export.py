"""``bench export``: a finished run as a PEFT adapter folder or a self-describing folder (docs/export.md)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from bench.errors import InputError

HELP = "write a finished run's trained state as a PEFT adapter or a self-describing folder"
FORMATS = ("auto", "peft", "folder")


def add_parser(sub) -> None:
    ex = sub.add_parser("export", help=HELP)
    ex.add_argument("run", metavar="RUN_ID|RECORD_PATH", help="a run id (or unique prefix) or a record file")
    ex.add_argument(
        "--to", required=True, metavar="FOLDER", help="output folder (must not exist, or be empty)"
    )
    ex.add_argument(
        "--format",
        default="auto",
        choices=FORMATS,
        help="peft: a PEFT adapter (methods PEFT has); folder: ptbench's own, for every method, read by "
        "bench eval FOLDER; auto (default): peft where the run fits it, else folder",
    )
    ex.add_argument("--out", default="results", help="results folder (default results/)")
    ex.add_argument("--data-dir", help="data folder (default: the run's own, else $BENCH_DATA_DIR)")
    ex.add_argument(
        "--verify",
        action="store_true",
        help="peft: load the adapter with PeftModel.from_pretrained and check it predicts the run's test rows "
        "as recorded (exit 1 if not)",
    )


def _check_target(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(f"--to {str(path)!r} exists and is not an empty folder; give a new folder")


def cmd(args: argparse.Namespace, console: Console) -> int:
    """Exit 0 when written (and, with ``--verify``, reproduced), 1 if verification fails, 2 bad input."""
    from bench.run.reeval import check_finished, find_record

    target = Path(args.to)
    _check_target(target)
    results_dir, record = find_record(args.run, Path(args.out))
    check_finished(record)
    if args.verify and args.format == "folder":
        raise InputError("--verify checks a PEFT adapter; for --format folder run bench eval FOLDER")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        written, mismatches = _write(args, record, results_dir, staging)
        _check_target(target)  # nothing appeared meanwhile
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    console.print(f"wrote {written} export of run {record['run_id']} to {target}/")
    if args.verify and written == "folder":
        console.print(f"--verify: the run has no PEFT twin; check the folder with bench eval {target}")
    if mismatches is None:
        return 0
    if mismatches:
        print(
            f"bench: not reproduced: PEFT's adapter predicts {mismatches} test rows differently",
            file=sys.stderr,
        )
        return 1
    console.print("PEFT's adapter predicts every test row as the run did")
    return 0


def _write(args, record: dict, results_dir: Path, staging: Path) -> tuple[str, int | None]:
    """Write into ``staging``; return the format written and, with ``--verify``, the differing predictions."""
    from bench.artifact_file import PROMPT_KEY, read_artifact
    from bench.export.folder_format import write_folder
    from bench.export.peft_format import peft_fit, write_peft
    from bench.run.reeval import NotReproduced, rebuild
    from bench.spec import RunSpec

    if args.format == "folder":
        write_folder(record, results_dir, staging)
        return "folder", None
    spec = RunSpec.from_dict(record["spec"])
    tensors, _ = read_artifact(results_dir / record["artifact"])
    try:  # before any weight is loaded
        peft_fit(spec, spec.train_config(), PROMPT_KEY in tensors)
    except InputError:
        if args.format == "peft":
            raise
        write_folder(record, results_dir, staging)
        return "folder", None
    try:
        backbone, task, _, test, train = rebuild(record, results_dir, args.data_dir)
    except NotReproduced as exc:  # the artifact does not fit the run its record describes
        raise InputError(str(exc)) from None
    head = None if task.is_regression else task.label_strings()  # an encoder's classifier: None = regression
    peft_type = write_peft(spec, train, backbone, head, staging, task.label_strings())
    if not args.verify:
        return f"PEFT {peft_type}", None
    from bench.export.peft_predict import load_adapter, peft_predictions

    fresh, peft_model = load_adapter(staging, spec.model, head, train)
    split = fresh.encode(test, task.label_strings())
    predicted = peft_predictions(fresh, peft_model, split, task.label_strings(), train.eval_mode)
    recorded = record["predictions"]["test"]["predicted"]
    return f"PEFT {peft_type}", sum(a != b for a, b in zip(predicted, recorded, strict=True))
