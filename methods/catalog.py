"""Imports every built-in method module so that its ``@register_method`` line runs."""

from methods import (  # noqa: F401
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
    mept,
    mpt,
    prefix,
    pt,
    ptuning,
    residual_pt,
    smop,
    spot,
    ulpt,
    xprompt,
)
