"""The search: one Optuna study per (method, task), trials executed as normal runs, N worker processes.

Each study plans its request once (``StudyJob.base_spec``: preset, ``--set``, exactly as ``bench run`` plans
it); a trial's ``RunSpec`` is that spec with the sampled values applied as further overrides
(``bench.planning.plan.with_overrides``) and ``spec.trial = {"study", "trial"}``. It runs on the grid's path for
one run (``bench.grid.runner.run_locked``: the per-run lock, the same worker subprocess, the same record), after
the results folder's stale temporary files are cleaned up (``bench.grid.execute.prepare_results``). The objective
is the task's dev selection metric at the best evaluation (maximised); trials never evaluate the test split
(``bench.worker``). The worker reports each dev evaluation through the runner <-> worker protocol; this process
reports it to Optuna and answers whether to stop (``bench.tune.report``), and a pruned trial ends with record
status ``pruned`` and Optuna state PRUNED. A trial checkpoints as a ``bench run`` does
(``--checkpoint-every``, else the preset's default, ``bench.presets.checkpoint_interval``); a trial Optuna
retries after its process died (an RDB storage's heartbeats, ``bench.tune.storage``) is the dead trial's run
again and resumes from its checkpoint.

Workers: ``--workers N`` starts N processes that share the study through its storage, each with a TPE sampler
seeded ``sampler_seed + k`` (``constant_liar`` so parallel workers spread out); on a GPU machine worker ``k``'s
runs see GPU ``k mod #GPUs``. ``--trials`` is the study's total: a worker stops once the study holds that many
complete, pruned, failed or running trials, so re-running the command resumes an interrupted search and the
same command on another machine (same ``--storage``, a different ``--sampler-seed``) joins it.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import InputError
from bench.grid.execute import prepare_results
from bench.grid.locks import holder
from bench.grid.runner import run_locked
from bench.measurement.measure import visible_gpus
from bench.planning.plan import RunRequest, plan_with_sources, with_overrides
from bench.presets import checkpoint_interval
from bench.spec import RunSpec
from bench.terminal import escape, show
from bench.tune.report import trial_reporter
from bench.tune.space import method_space, suggest, untuned_value
from bench.tune.storage import build_pruner, check_storage, open_storage
from bench.tune.summary import (
    _fmt,
    _states,
    summarise,
    summary_markdown,
    trials_table,
    write_plots,
    write_summary,
)
from methods.search_space import Dim, describe


class TrialFailed(RuntimeError):
    """The trial's run failed; Optuna records the trial as FAIL and the search goes on."""


@dataclass
class StudyJob:
    """One study: a single (method, task, seed) request and its space. Picklable for worker processes."""

    name: str
    storage: str
    pruner: str
    request: RunRequest
    space: dict[str, Dim]
    out_dir: str
    trials: int
    sampler_seed: int = 0
    log_dir: str | None = None  # --log-dir: trial N writes to <log_dir>/<study>/trial<N>_<run>/
    checkpoint_every: int | None = None  # --checkpoint-every: overrides the preset's default (0: none)
    base: RunSpec | None = None  # the request planned once (base_spec); travels to the worker processes

    @property
    def method(self) -> str:
        return self.request.methods[0]

    @property
    def task(self) -> str:
        return self.request.tasks[0]

    def base_spec(self) -> RunSpec:
        """The request's one spec, planned on first use only."""
        if self.base is None:
            sources, (self.base,) = plan_with_sources(self.request)
            if sources:
                raise InputError(
                    f"{self.method} on {self.task} needs source runs that are not in {self.request.out or 'results'}/ "
                    f"yet ({', '.join(s.label for s in sources)}); train them first with `bench run`"
                )
        return self.base

    def trial_spec(self, sampled: dict[str, dict[str, Any]], number: int) -> RunSpec:
        """The spec ``plan`` gives for the request with ``sampled`` added to its ``--set`` overrides."""
        spec = with_overrides(self.base_spec(), sampled)
        return dataclasses.replace(spec, trial={"study": self.name, "trial": number})


@dataclass
class TuneRequest:
    request: RunRequest  # suite, tasks, methods, one seed, preset, model, data, steps, --set overrides
    out_dir: str
    trials: int
    storage: str
    study: str | None = None
    pruner: str = "median"
    sampler_seed: int = 0
    workers: int = 1
    space_overrides: dict = field(default_factory=dict)
    reports_dir: str = "reports"
    log_dir: str | None = None  # TensorBoard folders, one per trial (bench/training/tensorboard_log.py)
    checkpoint_every: int | None = None  # --checkpoint-every (None: the preset's default, 0: no checkpoints)


def study_jobs(req: TuneRequest) -> list[StudyJob]:
    """One job per (method, task); names ``<method>-<suite>-<task>-<preset>`` unless ``--study`` is given."""
    check_storage(req.storage, req.workers)
    build_pruner(req.pruner)
    pairs = [(m, t) for m in req.request.methods for t in req.request.tasks]
    jobs = []
    for method, task in pairs:
        if req.study and len(pairs) == 1:
            name = req.study
        elif req.study:
            name = f"{req.study}-{method}" + (f"-{task}" if len(req.request.tasks) > 1 else "")
        else:
            name = f"{method}-{req.request.suite}-{task}-{req.request.preset}"
        overrides = {
            k: v for k, v in (req.request.overrides or {}).items() if k in ("train", method)
        }  # --set for other methods of the comparison does not concern this study
        single = dataclasses.replace(req.request, methods=[method], tasks=[task], overrides=overrides)
        job = StudyJob(
            name=name,
            storage=req.storage,
            pruner=req.pruner,
            request=single,
            space=method_space(method, req.space_overrides),
            out_dir=req.out_dir,
            trials=req.trials,
            sampler_seed=req.sampler_seed,
            log_dir=req.log_dir,
            checkpoint_every=req.checkpoint_every,
        )
        base = job.base_spec()  # validates the request and every path of the space
        for path, dim in job.space.items():
            value = untuned_value(base, path)
            if getattr(dim, "relative", False):
                dim.bounds(value)
        jobs.append(job)
    return jobs


COUNTED = ("COMPLETE", "PRUNED", "FAIL", "RUNNING")


def create_study(job: StudyJob):
    """Create (or reopen) the study and record what it searches in its user attributes."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=job.name,
        storage=open_storage(job.storage),
        direction="maximize",
        load_if_exists=True,
    )
    base = job.base_spec()
    attrs = {
        "method": job.method,
        "suite": job.request.suite,
        "task": job.task,
        "preset": job.request.preset,
        "model": base.model,
        "seed": base.seed,
        "out_dir": str(Path(job.out_dir).resolve()),
        "space": {path: describe(dim, untuned_value(base, path)) for path, dim in job.space.items()},
    }
    for key, value in attrs.items():
        if key not in study.user_attrs:
            study.set_user_attr(key, value)
    if study.user_attrs.get("method") != job.method or study.user_attrs.get("task") != job.task:
        raise InputError(
            f"study {job.name!r} in this storage tunes {study.user_attrs.get('method')} on "
            f"{study.user_attrs.get('task')}, not {job.method} on {job.task}; pick another --study name"
        )
    return study


def make_objective(job: StudyJob, gpu: str | None = None):
    import optuna

    base = job.base_spec()

    def objective(trial: optuna.Trial) -> float:
        # A retried trial (RetryFailedTrialCallback copies the dead trial's params and user attributes) runs
        # the dead trial's run again: the same run id, so it resumes from that run's checkpoint.
        number = trial.user_attrs.get("run_trial", trial.number)
        spec = job.trial_spec(suggest(trial, job.space, base), number)
        trial.set_user_attr("run_trial", number)
        trial.set_user_attr("run_id", spec.run_id)
        out = Path(job.out_dir)
        env = {"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else None
        logs = Path(job.log_dir) if job.log_dir else None
        every = checkpoint_interval(spec, job.checkpoint_every)
        record = run_locked(
            spec, out, env=env, log_dir=logs, on_evaluation=trial_reporter(trial), checkpoint_every=every
        )
        if record is None:  # trial run ids are unique to the study: another search process took this one
            error = f"run {spec.run_id} is locked by another process (pid {holder(out, spec.run_id)})"
            trial.set_user_attr("error", error)
            raise TrialFailed(error)
        trial.set_user_attr("status", record["status"])
        if record["status"] == "pruned":
            trial.set_user_attr("pruned", record["error"])
            raise optuna.TrialPruned(record["error"])
        if record["status"] != "ok":
            trial.set_user_attr("error", record["error"])
            raise TrialFailed(record["error"])
        metric = record["metrics"]["selection_metric"]
        trial.set_user_attr("metric", metric)
        trial.set_user_attr("best_step", record["metrics"]["best_step"])
        return float(record["metrics"]["dev"][metric])

    return objective


def worker_main(job: StudyJob, index: int, n_trials: int, gpu: str | None = None) -> None:
    """One searching process: run up to ``n_trials`` trials, stop when the study reaches ``job.trials``."""
    import optuna
    from optuna.study import MaxTrialsCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    sampler = optuna.samplers.TPESampler(
        seed=job.sampler_seed + index,
        n_startup_trials=max(2, min(10, job.trials // 3)),
        constant_liar=True,
    )
    study = optuna.load_study(
        study_name=job.name,
        storage=open_storage(job.storage, heartbeat=True),
        sampler=sampler,
        pruner=build_pruner(job.pruner),
    )

    def announce(study, frozen) -> None:
        value = f"dev {frozen.value:.2f}" if frozen.value is not None else ""
        why = frozen.user_attrs.get("pruned") or frozen.user_attrs.get("error") or ""
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in frozen.params.items())
        print(
            f"[worker {index}] trial {frozen.number}: {frozen.state.name.lower()} {value} {why} ({params})",
            flush=True,
        )

    counted = tuple(getattr(optuna.trial.TrialState, n) for n in COUNTED)
    study.optimize(
        make_objective(job, gpu),
        n_trials=n_trials,
        catch=(TrialFailed,),
        callbacks=[announce, MaxTrialsCallback(job.trials, states=counted)],
    )


def run_study(job: StudyJob, workers: int, console) -> Any:
    """Run the remaining trials of ``job`` with ``workers`` processes; return the study."""
    study = create_study(job)
    remaining = job.trials - _states(study, ("COMPLETE", "PRUNED", "FAIL"))
    console.print(
        f"[bold]study[/bold] {job.name}: {job.method} on {job.request.suite}/{job.task}, "
        f"{job.trials} trials ({max(remaining, 0)} to run) with {workers} worker(s); storage {job.storage}"
    )
    for path, text in study.user_attrs.get("space", {}).items():
        console.print(f"  {path}: {text}")
    if remaining <= 0:
        return study
    for tmp in prepare_results(Path(job.out_dir)):
        console.print(f"removed a temporary file left by a killed run: {escape(tmp.name)}")
    gpus = visible_gpus()
    workers = max(1, min(workers, remaining))
    share = math.ceil(remaining / workers)
    if workers == 1:
        worker_main(job, 0, share, gpus[0] if gpus else None)
    else:
        ctx = multiprocessing.get_context("spawn")
        procs = [
            ctx.Process(target=worker_main, args=(job, k, share, gpus[k % len(gpus)] if gpus else None))
            for k in range(workers)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        dead = [k for k, p in enumerate(procs) if p.exitcode != 0]
        if dead:
            console.print(f"[red]worker(s) {dead} exited abnormally[/red]; re-run the command to resume")
    return study


def run_tune(req: TuneRequest, console) -> int:
    """Run every study, then print and write summaries and plots. 0 if each study has a complete trial."""
    jobs = study_jobs(req)
    summaries = []
    for job in jobs:
        study = run_study(job, req.workers, console)
        show(console, trials_table(study))
        summary = summarise(study)
        summaries.append(summary)
        folder = Path(req.reports_dir) / "tune" / job.name
        files = write_plots(study, folder) + write_summary([summary], folder)
        console.print(f"reports: {', '.join(str(f) for f in files)}")
    if len(jobs) > 1:
        group = req.study or f"{req.request.suite}-{'_'.join(req.request.tasks)}-{req.request.preset}"
        files = write_summary(summaries, Path(req.reports_dir) / "tune" / f"compare-{group}")
        console.print(f"budget-matched comparison: {', '.join(str(f) for f in files)}")
    console.print(summary_markdown(summaries), markup=False)
    return 0 if all(s["best"] for s in summaries) else 1


def load_study(name: str, storage: str):
    """An existing study, or a one-line error naming the studies the storage holds."""
    import optuna

    from bench.registry import did_you_mean

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not storage.count("://") and not Path(storage).exists():
        raise InputError(f"no study storage at {storage!r}; run `bench tune` first or pass --storage")
    store = open_storage(storage)
    names = [s.study_name for s in optuna.get_all_study_summaries(store, include_best_trial=False)]
    if name not in names:
        raise InputError(
            f"unknown study {name!r}{did_you_mean(name, names)}; studies in {storage}: {', '.join(names) or 'none'}"
        )
    return optuna.load_study(study_name=name, storage=store)


def best_overrides(name: str, storage: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """``--params best:STUDY``: the study's method and its best trial's settings as overrides."""
    from bench.tune.space import params_to_overrides

    study = load_study(name, storage)
    if not _states(study, ("COMPLETE",)):
        raise InputError(f"study {name!r} has no complete trial yet; nothing to re-run")
    method = study.user_attrs["method"]
    return method, params_to_overrides(study.best_trial.params, method)
