"""Imports every built-in method module so that its ``@register_method`` line runs."""

from methods import dept, ept, pt  # noqa: F401

from methods import lpt  # noqa: F401  # isort: skip
