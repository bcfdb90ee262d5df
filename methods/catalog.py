"""Imports every built-in method module so that its ``@register_method`` line runs."""

import methods.adapter  # noqa: F401
import methods.bitfit  # noqa: F401
import methods.finetune  # noqa: F401
import methods.lora  # noqa: F401
import methods.ptuning  # noqa: F401
from methods import dept, ept, pt  # noqa: F401
