"""Building and finishing one run, in the worker child (``python -m bench.worker``): ``assemble`` is the
one factory for a run's data, backbone and method, ``artifacts`` saves and loads the trained state,
``record`` fills the record from the result. ``bench eval`` (``reeval``), ``bench params`` and
``bench perf`` build through the same factory."""
