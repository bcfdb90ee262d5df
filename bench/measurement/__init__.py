"""Measurement that wraps the training loop from outside, the same for every method, in the worker child
(and in ``bench perf``'s timed loops): step times, memory peaks and environment (``measure``), and whether
other processes shared the machine while a run was timed (``contention``)."""
