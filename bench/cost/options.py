"""``bench run``'s and ``bench tune``'s cost options; a light module (argparse only), imported when the CLI's
parsers are built, before any command runs."""

from __future__ import annotations

import argparse


def add_cost_options(parser: argparse.ArgumentParser) -> None:
    """``--gpu``, ``--gpu-memory`` and ``--calibrate`` (``bench run`` and ``bench tune``)."""
    parser.add_argument(
        "--gpu",
        metavar="CARD",
        help="the card the plan's memory and time predictions assume (h100, a100-80gb, a100-40gb, l4, a10, "
        "rtx4090, rtx3090, v100-32gb, v100-16gb, t4, h200, cpu; default: the visible device)",
    )
    parser.add_argument(
        "--gpu-memory",
        type=float,
        metavar="GB",
        help="memory budget in GB a run must fit (default: the card's); runs over it are flagged with the "
        "largest batch that fits",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="time a few training steps of each distinct run shape on the visible device first and use them "
        "for the time prediction (cached per device, model, method, shape and precision)",
    )
