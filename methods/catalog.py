"""Imports every built-in method module so that its ``@register_method`` line runs."""

import methods.attempt  # noqa: F401
import methods.mpt  # noqa: F401
from methods import dept, ept, pt  # noqa: F401
