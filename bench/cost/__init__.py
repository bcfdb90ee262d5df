"""What a planned grid costs before it starts: steps, tokens, FLOPs, predicted peak memory and time per run.

``step.py`` counts one training step of a run's shapes without computing the model (fake tensors);
``devices.py`` names the cards a plan can target; ``calibrate.py`` times real steps on the present device and
caches them; ``estimate.py`` turns a spec into its run's cost; ``show.py`` prints it for ``bench run`` and
``bench tune``. Documented in docs/gpu.md.
"""
