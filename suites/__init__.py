"""GLUE and SuperGLUE tasks for the benchmark: rows, ``dept`` text formats, splits and metrics.

Importing the package registers every task (``suites.glue``, ``suites.superglue``); ``suites.registry`` says
how to add one. The facts followed are docs/protocol.md (the protocol and its data formats).
"""

from suites import glue, superglue  # noqa: F401  (importing a suite module registers its tasks)
from suites.errors import TaskDataError
from suites.registry import UnknownNameError, all_tasks, get_task, list_suites, suite_tasks
from suites.splits import check_local_files, load_splits
from suites.task import Example, Splits, Task

__all__ = [
    "Example",
    "Splits",
    "Task",
    "TaskDataError",
    "UnknownNameError",
    "all_tasks",
    "check_local_files",
    "get_task",
    "list_suites",
    "load_splits",
    "suite_tasks",
]
