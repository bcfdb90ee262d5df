"""Where studies live, and which pruner they use.

A storage is one string, so it can be handed to worker processes (and run subprocesses) unchanged:

* a file path (the default: ``<results>/tune.journal``): Optuna's journal storage (``JournalStorage`` over a
  ``JournalFileBackend`` with an open-lock, which also works on NFS). Several processes on one machine, or on
  machines sharing the filesystem, can use it at once.
* an SQLAlchemy URL (``postgresql://user@host/db``, ``mysql+pymysql://...``): ``RDBStorage``, for workers on
  many machines. With it, each searching process records heartbeats, so a trial whose process died is marked
  failed and re-queued (``RetryFailedTrialCallback``). ``postgresql://`` uses psycopg 3 when psycopg2 is absent.

SQLite is refused for parallel workers (it serialises writers badly and locks over NFS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import InputError

DEFAULT_JOURNAL = "tune.journal"
HEARTBEAT_S = 30
GRACE_S = 120


def default_storage(out_dir: Path | str) -> str:
    return str((Path(out_dir) / DEFAULT_JOURNAL).resolve())


def is_url(storage: str) -> bool:
    return "://" in storage


def normalise_url(url: str) -> str:
    """``postgresql://`` -> ``postgresql+psycopg://`` when only psycopg 3 is installed."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def check_storage(storage: str, workers: int) -> None:
    """One-line ``ValueError`` for storages that cannot serve the request."""
    if is_url(storage) and storage.startswith("sqlite") and workers > 1:
        raise InputError(
            f"--storage {storage!r}: SQLite is not used for parallel workers; use the default journal file "
            "or a server URL (postgresql://...)"
        )


def open_storage(storage: str, heartbeat: bool = False) -> Any:
    """The Optuna storage object for ``storage``; ``heartbeat`` for processes that run trials (RDB only)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if is_url(storage):
        kwargs: dict[str, Any] = {}
        if heartbeat:
            kwargs = dict(
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
                failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=2),
            )
        return optuna.storages.RDBStorage(
            normalise_url(storage), engine_kwargs={"pool_pre_ping": True}, **kwargs
        )
    path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path), JournalFileOpenLock(str(path))))


PRUNERS = ("median", "percentile", "hyperband", "successive_halving", "threshold", "none")


def build_pruner(text: str) -> Any:
    """``median`` (default: ``n_startup_trials=2``, prune from the first evaluation), ``none``, or
    ``NAME:key=value,...`` with Optuna's keyword arguments, e.g. ``median:n_startup_trials=5,n_warmup_steps=100``,
    ``percentile:percentile=25``, ``hyperband``, ``threshold:lower=60``.

    The median default starts after 2 finished trials (Optuna's is 5) because searches here are small (6-30
    trials); pass ``median:n_startup_trials=5`` for Optuna's.
    """
    import optuna

    name, _, rest = text.partition(":")
    if name not in PRUNERS:
        from bench.registry import did_you_mean

        raise InputError(
            f"--pruner {text!r}: unknown pruner {name!r}{did_you_mean(name, list(PRUNERS))}; "
            f"allowed: {', '.join(PRUNERS)}"
        )
    kwargs: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--pruner {text!r}: {item!r} is not key=value")
        kwargs[key.strip()] = _number(value.strip())
    classes = {
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "threshold": optuna.pruners.ThresholdPruner,
        "none": optuna.pruners.NopPruner,
    }
    if name == "median":
        kwargs = {"n_startup_trials": 2, **kwargs}
    try:
        return classes[name](**kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"--pruner {text!r}: {str(exc).splitlines()[0]}") from None


def _number(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
