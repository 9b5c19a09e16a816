"""The ``prepost`` command (console script; also ``python -m prepost``).

Subcommands: ``init`` (prepost.cli.init) proposes a dataset config from GEO series.
"""

from __future__ import annotations

import sys

from prepost.cli.init import InitError, add_init_parser


def build_parser():
    import argparse

    parser = argparse.ArgumentParser(prog="prepost", description="paired pre/post-treatment expression")
    sub = parser.add_subparsers(dest="command", required=True)
    add_init_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InitError as err:
        print(f"prepost {args.command}: {err}", file=sys.stderr)
        return 2
