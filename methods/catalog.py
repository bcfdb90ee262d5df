"""Imports every built-in method module so that its ``@register_method`` line runs."""

import methods.dpt  # noqa: F401
import methods.residual_pt  # noqa: F401
import methods.xprompt  # noqa: F401
from methods import dept, ept, pt  # noqa: F401
