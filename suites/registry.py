"""Task registry: one ``register_task(...)`` call makes a task exist for the CLI, the runner and the reports.

How to add a task
-----------------

1. Add one call to the suite's module, ``suites/glue.py`` (original files are TSV) or ``suites/superglue.py``
   (JSONL). The arguments are facts about the task, all from docs/protocol.md (text formats, split family,
   metrics, data files, HF schema and label order). WNLI, for example, would be::

       register_task(GlueTask(
           name="wnli",
           description="WNLI: does sentence2 follow from sentence1 (2 classes)",
           hf_config="wnli",                                   # Hub: nyu-mll/glue, config "wnli"
           local_dir="WNLI",                                   # local: glue/WNLI/{train,dev}.tsv
           text_columns={"sentence1": "sentence1", "sentence2": "sentence2"},  # HF field -> file column
           label_column="label",
           label_names=("not_entailment", "entailment"),       # HF ClassLabel order = digit target
           split_family="small",                               # docs/protocol.md#splits
           metric_names=("accuracy",),                         # selection metric first
           headline_metric="accuracy",                         # the number the paper tables report
           official_rows={"train": 635, "validation": 71},     # checked against the files
       ))

   The source text is ``"<field>: <value>"`` for each of the text fields, in the order given, joined by single
   spaces (``"sentence1: ... sentence2: ..."``); the target is the label's index as a string.
   A SuperGLUE task is a ``SuperGlueTask(...)`` with ``local_dir``, ``row_fields`` (what to copy from each
   JSON record) and ``source_fields`` (what goes into the source text, in order).

2. Only if the format or the file layout is unusual, subclass and override one hook: ``_field_text`` (clean
   one field, e.g. MultiRC's HTML), ``_source`` (the whole source, e.g. WSC's span markers),
   ``_convert_record`` (one file record to HF rows, e.g. MultiRC's nesting) or ``_fix_rows`` (repairs on
   loaded rows, e.g. WSC spans). The registry, splits, metrics and CLI need no change.

3. Add tests in ``tests/test_suites_*.py``: one row's exact source string and target, and the split sizes on
   the real data in ``$BENCH_DATA_DIR`` (docs/protocol.md#splits lists them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.registry import Registry, did_you_mean, unknown_name
from bench.registry import UnknownNameError as _UnknownName

if TYPE_CHECKING:
    from suites.task import Task

__all__ = ["did_you_mean", "register_task", "get_task", "list_suites", "suite_tasks", "all_tasks"]

SUITES = ("glue", "superglue")


class UnknownNameError(_UnknownName):
    """An unknown task, suite or split name; the message is one line with the allowed names."""


_TASKS: Registry[Task] = Registry("task", UnknownNameError, casefold=True)


def unknown(kind: str, value: str, allowed: list[str], where: str = "") -> UnknownNameError:
    """The one-line error for a bad name: the value, a close match if any, and every allowed name."""
    return unknown_name(kind, value, allowed, where, UnknownNameError)


def register_task(task: Task) -> Task:
    """Make ``task`` known under ``task.name``; names are unique across suites."""
    if task.suite not in SUITES:
        raise unknown("suite", task.suite, list(SUITES))
    return _TASKS.register(task.name, task)


def list_suites() -> list[str]:
    return list(SUITES)


def _check_suite(suite: str) -> str:
    key = suite.strip().lower()
    if key not in SUITES:
        raise unknown("suite", suite, list(SUITES))
    return key


def suite_tasks(suite: str) -> list[str]:
    """Task names of ``suite`` in the order of the paper tables (docs/reports.md#published-numbers)."""
    key = _check_suite(suite)
    return [name for name, task in _TASKS.items() if task.suite == key]


def all_tasks() -> list[Task]:
    return list(_TASKS.values())


def get_task(name: str, suite: str | None = None) -> Task:
    """The registered task ``name`` (case-insensitive); with ``suite``, it must belong to that suite."""
    allowed = suite_tasks(suite) if suite is not None else list(_TASKS)
    key = name.strip().lower()
    if key not in allowed:
        raise _TASKS.unknown(name, allowed, where=f" in suite {suite!r}" if suite is not None else "")
    return _TASKS[key]
