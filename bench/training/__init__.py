"""The training loop, in the worker child: ``trainer`` runs it (batch, timed step, dev evaluation, best-dev
selection) with its helpers ``optim`` (optimiser, schedule, trainable state), ``loop_state`` (resume,
snapshots, NaN policy), ``stages`` (multi-stage methods), ``checkpoint`` (``--checkpoint-every``),
``precision`` (``train.precision``), ``curves`` and ``tensorboard_log`` (learning curves) and ``faults``
(test-only fault injection)."""
