"""``bench tune``: hyperparameter search with Optuna over normal runs (one record per trial).

Modules: ``storage`` (where studies live), ``space`` (a method's search space, YAML overrides, sampling),
``report`` (the in-run hook that reports dev scores and prunes), ``search`` (objective, workers, summaries,
plots, ``tune show``, ``--params best:STUDY``).
"""
