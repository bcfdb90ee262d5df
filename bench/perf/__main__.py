"""``python -m bench.perf CASE.json``: time one case in this process and print its row as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.perf.cases import PerfCase
from bench.perf.loops import run_case


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    case = PerfCase(**json.loads(Path(argv[0]).read_text()))
    print(json.dumps(run_case(case)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
