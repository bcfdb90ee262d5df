"""Backbone families (``seq2seq``, ``encoder``, ``decoder``: tokenising, forward, loss, prediction), how to load
one (``load``: ``load_backbone`` for a task, ``meta_backbone`` as shapes only) and how a ``--model`` name
resolves (``models``: aliases, local folders, Hub names, GGUF conversion). Import names from the module that
defines them: this package loads nothing itself, so resolving a model name (``bench.backbones.models``, which
the CLI's parsers use) does not load torch."""
