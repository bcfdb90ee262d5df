"""Imports every built-in method module so that its ``@register_method`` line runs."""

from methods import (  # noqa: F401
    attempt,
    dept,
    dpt,
    ept,
    lpt,
    mpt,
    pt,
    residual_pt,
    spot,
    xprompt,
)
