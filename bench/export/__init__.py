"""``bench export``: a finished run's trained state written for use outside ptbench (docs/export.md).

* ``peft_format``: a PEFT adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``) for the runs
  whose method PEFT has and whose placement PEFT reproduces exactly (``peft_fit`` says which and why not);
* ``peft_predict``: the test predictions of such an adapter loaded by ``PeftModel.from_pretrained`` (the check
  behind ``--verify``);
* ``peft_decoder``: a causal LM's predictions through PEFT's own forward and ``generate``, called so that PEFT
  places a prompt (no pad in front of it) and numbers a prefix's text as ptbench does;
* ``folder_format``: a self-describing folder for every method, which ``bench eval FOLDER`` reads.
"""
