"""Kills and resumes: SIGKILL mid-grid then a re-run completes every run exactly once; SIGINT/SIGTERM exit
cleanly with a ``cancelled`` record; per-run locks; the loader survives corrupt and foreign files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from rich.console import Console

from bench.cli import main
from bench.grid.execute import execute_grid
from bench.grid.locks import lock_path, try_lock
from bench.planning.plan import RunRequest, plan
from bench.results import empty_record, iter_records, load_records, read_record

REPO = Path(__file__).resolve().parents[1]


def grid_args(model_dir, data_dir, out, seeds="1,2,3", steps=4):
    return [
        "run",
        "--tasks",
        "rte",
        "--methods",
        "pt",
        "--seeds",
        seeds,
        "--preset",
        "quick",
        "--model",
        str(model_dir),
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--max-steps",
        str(steps),
        "--max-train-samples",
        "32",
        "--set",
        "train.max_length=24",
        "--set",
        "train.max_eval_samples=8",
        "--set",
        "train.eval_every=2",
        "--set",
        "train.batch_size=4",
        "--set",
        "pt.num_tokens=4",
    ]


def start_bench(args, fault: str) -> subprocess.Popen:
    env = dict(os.environ, PTBENCH_FAULT=fault, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so the test can clean up parent and worker
        # A pytest started in the background by a script inherits SIGINT ignored; a terminal's bench does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.slow
def test_sigkill_mid_grid_then_rerun_completes_every_run_once(tiny_bert_dir, data_dir, tmp_path, monkeypatch):
    out = tmp_path / "results"
    args = grid_args(tiny_bert_dir, data_dir, out)
    proc = start_bench(args, "sleep@*:0.4")
    try:
        wait_for(lambda: list(out.glob("*.json")))  # the first run has finished, the second is starting
        first = next(out.glob("*.json"))
        first_mtime = first.stat().st_mtime_ns
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: its worker must die with it (PR_SET_PDEATHSIG)
        proc.wait(30)
        wait_for(lambda: not group_alive(proc.pid), timeout=30)
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    for path in out.glob("*.json"):
        json.loads(path.read_text())  # no half-written record
    assert not list(out.rglob("*.tmp"))
    assert read_record(first)["status"] == "ok"

    # A temporary file left by a write that was killed half-way (as SIGKILL during os.replace's prep would):
    specs = plan_specs(tiny_bert_dir, data_dir)
    stale = out / f".pt_rte_seed2_{specs[1].run_id}.json.abc123.tmp"
    stale.write_text('{"schema_version": 1, "run_')
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the loader does not even look at temporary files
        assert len(list(iter_records(out))) == len(list(out.glob("*.json")))

    monkeypatch.delenv("PTBENCH_FAULT", raising=False)
    assert main(args) == 0
    assert not stale.exists() and not list(out.rglob("*.tmp"))
    records = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert sorted(r["run_id"] for r in records) == sorted(s.run_id for s in specs)  # each exactly once
    assert {r["status"] for r in records} == {"ok"}
    assert first.stat().st_mtime_ns == first_mtime  # finished before the kill: not run again
    assert not list((out / "checkpoints").glob("*")) if (out / "checkpoints").exists() else True


def plan_specs(model_dir, data_dir):
    request = RunRequest(
        suite="glue",
        tasks=["rte"],
        methods=["pt"],
        seeds=[1, 2, 3],
        preset="quick",
        model=str(model_dir),
        data_dir=str(Path(data_dir)),
        max_steps=4,
        max_train_samples=32,
        overrides={
            "train": {"max_length": "24", "max_eval_samples": "8", "eval_every": "2", "batch_size": "4"},
            "pt": {"num_tokens": "4"},
        },
    )
    return plan(request)


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_cancel_the_run_and_exit_cleanly(tiny_bert_dir, data_dir, tmp_path, signum, code):
    """The run is cancelled with its checkpoint kept; after SIGTERM a re-run resumes it and finishes it."""
    out = tmp_path / "results"
    args = [*grid_args(tiny_bert_dir, data_dir, out, seeds="1", steps=40), "--checkpoint-every", "2"]
    proc = start_bench(args, "sleep@*:0.3")
    try:
        wait_for(lambda: list((out / "checkpoints").glob("*.pt")))  # training, checkpointed at step 2
        os.kill(proc.pid, signum)  # the parent only, as `kill` or a scheduler would
        stdout, stderr = proc.communicate(timeout=60)
        wait_for(lambda: not group_alive(proc.pid), timeout=30)  # the worker was stopped too
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code, stderr[-2000:]
    assert "bench: interrupted; finished runs are saved" in stderr
    (path,) = out.glob("*.json")
    record = read_record(path)
    assert record["status"] == "cancelled"
    assert record["error"] == f"cancelled: bench run received {signal.Signals(signum).name}"
    assert not list(out.glob("*.tmp"))
    (checkpoint,) = (out / "checkpoints").glob("*.pt")
    assert checkpoint.name == f"{record['run_id']}.pt"
    if signum == signal.SIGTERM:
        assert main(args) == 0
        record = read_record(path)
        assert record["status"] == "ok" and record["steps"] == 40
        assert not checkpoint.exists() and not list(out.rglob("*.tmp"))


def test_cancelled_and_failed_runs_run_again_only_ok_is_skipped(tiny_bert_dir, data_dir, tmp_path, capsys):
    specs = plan_specs(tiny_bert_dir, data_dir)
    from bench.results import failed_record, record_path, write_json_atomic

    write_json_atomic(record_path(tmp_path, specs[0]), failed_record(specs[0], "x", None, status="cancelled"))
    write_json_atomic(record_path(tmp_path, specs[1]), failed_record(specs[1], "x", None, status="oom"))
    ok = empty_record(specs[2]) | {"status": "ok"}
    write_json_atomic(record_path(tmp_path, specs[2]), ok)
    assert main([*grid_args(tiny_bert_dir, data_dir, tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "pt on glue/rte" in line][
        :3
    ]  # the plan (the cost table follows)
    assert [("cancelled" in r, "oom" in r, "skip" in r) for r in rows] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]


def test_a_run_locked_by_another_process_is_skipped_not_failed(tiny_bert_dir, data_dir, tmp_path):
    (spec, *_) = plan_specs(tiny_bert_dir, data_dir)
    console = Console(record=True, width=200)
    with try_lock(tmp_path, spec.run_id):
        assert try_lock(tmp_path, spec.run_id) is None  # a second holder is refused
        assert execute_grid([spec], tmp_path, console) == 0
    text = console.export_text()
    assert (
        f"skipped pt on glue/rte seed 1 ({spec.run_id}): running in another bench process (pid {os.getpid()})"
        in text
    )
    assert "1 run(s) skipped" in text and "did not finish" not in text
    assert not list(tmp_path.glob("*.json"))  # nothing run, nothing recorded


@pytest.mark.slow
def test_a_lock_dies_with_its_process(tmp_path):
    code = (
        "import os, sys, time; from bench.grid.locks import try_lock; "
        f"lock = try_lock({str(tmp_path)!r}, 'abcd'); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    assert try_lock(tmp_path, "abcd") is None
    holder.kill()
    holder.wait()
    lock = try_lock(tmp_path, "abcd")
    assert lock is not None and lock_path(tmp_path, "abcd").exists()
    lock.release()


def test_loader_reports_and_skips_corrupt_and_foreign_files(tiny_bert_dir, data_dir, tmp_path):
    (spec, *_) = plan_specs(tiny_bert_dir, data_dir)
    good = empty_record(spec) | {"status": "ok"}
    (tmp_path / "good.json").write_text(json.dumps(good))
    bad = {
        "truncated.json": json.dumps(good)[:200],
        "empty.json": "",
        "binary.json": b"\x89PNG\r\n\x1a\n\x00\xff".decode("latin-1"),
        "list.json": "[1, 2, 3]",
        "foreign.json": json.dumps({"name": "package.json", "version": "1.0"}),
        "newer.json": json.dumps(good | {"schema_version": 99}),
        "bad_status.json": json.dumps(good | {"status": "exploded"}),
        "bad_metrics.json": json.dumps(good | {"metrics": [1, 2]}),
        "bad_spec.json": json.dumps(good | {"spec": {"suite": "glue"}}),
        "deep.json": "[" * 100_000 + "]" * 100_000,
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "dir.json").mkdir()
    with pytest.warns(UserWarning) as caught:
        frame = load_records(tmp_path)
    assert list(frame["run_id"]) == [spec.run_id]
    warned = " ".join(str(w.message) for w in caught)
    for name in bad:
        assert name in warned, name


def test_corrupt_record_of_a_planned_run_means_run_it_again(tiny_bert_dir, data_dir, tmp_path, capsys):
    from bench.results import record_path

    (spec, *_) = plan_specs(tiny_bert_dir, data_dir)
    record_path(tmp_path, spec).write_text('{"status": "ok", "run_id": "' + spec.run_id)
    with pytest.warns(UserWarning, match="skipping"):
        assert main([*grid_args(tiny_bert_dir, data_dir, tmp_path, seeds="1"), "--dry-run"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if spec.run_id in line)
    assert row.rstrip(" │").endswith("run")


def test_two_bench_runs_on_one_folder_run_each_run_once(tiny_bert_dir, data_dir, tmp_path, monkeypatch):
    """Two grids at once on the same folder (threads here; the lock is per open file, as between processes):
    every run is executed by exactly one of them and neither reports the other's runs as failed."""
    import threading
    from collections import Counter

    import bench.grid.runner
    from bench.results import record_path, write_json_atomic

    calls: Counter = Counter()

    def fake_run_one(spec, out_dir, on_progress=None, save_artifacts=True, checkpoint_every=None, **_options):
        calls[spec.run_id] += 1  # _options: the worker's env (grid workers) and log_dir, unused here
        time.sleep(0.3)
        record = empty_record(spec) | {"status": "ok", "trainable_params": 1, "step_time_ms_median": 1.0}
        record["metrics"]["headline"] = {"name": "accuracy", "dev": 50.0, "test": 50.0}
        write_json_atomic(record_path(out_dir, spec), record)
        return record

    monkeypatch.setattr(bench.grid.runner, "run_one", fake_run_one)
    specs = plan_specs(tiny_bert_dir, data_dir)
    codes = []
    consoles = [Console(record=True, width=200) for _ in range(2)]
    threads = [
        threading.Thread(target=lambda c=c: codes.append(execute_grid(specs, tmp_path, c))) for c in consoles
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [0, 0]
    assert calls == Counter({s.run_id: 1 for s in specs})
    assert len(list(tmp_path.glob("*.json"))) == 3
