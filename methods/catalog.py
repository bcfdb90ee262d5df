"""Imports every built-in method module so that its ``@register_method`` line runs."""

from methods import dept, ept, pt  # noqa: F401
