"""``bench params``: trainable/total parameters per method, from the model's config alone (meta device)."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from bench.terminal import show

HELP = "trainable/total parameters per method, from the config only"


def add_parser(sub) -> None:
    params = sub.add_parser("params", help=HELP)
    params.add_argument("--model", default="t5-base", help="model alias or folder (default t5-base)")
    params.add_argument("--methods", default="all", help="comma-separated method names, or 'all' (default)")
    params.add_argument("--max-length", type=int, default=256, help="padded source length s (default 256)")
    params.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="METHOD.FIELD=VALUE",
        help="override a config field; repeatable",
    )


def cmd(args: argparse.Namespace, console: Console) -> int:
    import torch

    from bench.backbones.load import meta_backbone
    from bench.planning.plan import parse_overrides
    from bench.run.assemble import attach_method
    from methods.registry import build_config, parse_method_list

    methods = parse_method_list(args.methods)
    overrides = parse_overrides(args.set, methods)
    backbone = meta_backbone(args.model, args.max_length)
    total_backbone = backbone.total_params()
    head = sum(p.numel() for p in backbone.head_parameters())
    table = Table(
        title=f"{args.model} (s={args.max_length}, backbone {total_backbone:,} params)", header_style="bold"
    )
    for col in ("method", "trainable", "extra", "head", "total", "trainable %"):
        table.add_column(col, justify="right" if col != "method" else "left")
    for name in methods:
        # A fresh meta backbone per method: wrap methods change the model they attach to.
        backbone = meta_backbone(args.model, args.max_length)
        with torch.device("meta"):
            method = attach_method(backbone, name, build_config(name, overrides.get(name)))
        counts = method.counts()
        total = (
            backbone.total_params()
        )  # model (with anything a wrap method added) + method, each tensor once
        share = 100 * counts.trainable_params / total
        table.add_row(
            name,
            f"{counts.trainable_params:,}",
            f"{counts.extra_params:,}",
            f"{head:,}",
            f"{total:,}",
            f"{share:.4f}",
        )
    show(console, table)
    return 0
