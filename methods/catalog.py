"""Imports every built-in method module so that its ``@register_method`` line runs."""

from methods import (  # noqa: F401
    accept,
    adapter,
    adept,
    attempt,
    bitfit,
    dept,
    dpt,
    ept,
    finetune,
    lora,
    lpt,
    mpt,
    prefix,
    pt,
    ptmoe,
    ptuning,
    residual_pt,
    spot,
    ulpt,
    xprompt,
)
