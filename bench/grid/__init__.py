"""The grid, in the ``bench`` parent process while the runs go: ``execute.execute_grid`` splits done from
to-do and reports, ``executors`` decide where each run executes, ``runner`` supervises one worker subprocess
under its per-run lock (``locks``), ``ui`` draws the screen and ``signals`` turns SIGTERM into an interrupt.
It starts workers (``python -m bench.worker``) and reads their records; it never trains."""
