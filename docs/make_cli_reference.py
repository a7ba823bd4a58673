"""Write docs/cli.md: the `--help` of every `audit` command and subcommand (including `audit
simulate`, which audit/cli.py loads lazily from loops/cli.py), rendered by click at a fixed width
so the text does not depend on the terminal.

    .venv/bin/python docs/make_cli_reference.py

Re-run it after changing any option; tests/test_docs.py fails while docs/cli.md is out of date.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from audit.cli import main

WIDTH = 100
TARGET = Path(__file__).with_name("cli.md")
HEADER = """# `audit` command reference

Generated from the click definitions by `docs/make_cli_reference.py`; do not edit by hand.
Exit codes of `audit scan`: 0 ok, 1 a `--fail-above` threshold exceeded, 2 usage or input error,
3 an unexpected internal error (a bug).
"""


def contexts(ctx: click.Context) -> Iterator[click.Context]:
    """`ctx`, then a context for every subcommand, depth first in the group's listed order."""
    yield ctx
    command = ctx.command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):  # get_command also resolves lazily loaded commands
            yield from contexts(_context(command.get_command(ctx, name), name, parent=ctx))


def _context(command: click.Command, name: str, **settings) -> click.Context:
    """What click builds when it runs `command` (its context_settings included), without parsing anything."""
    return click.Context(command, info_name=name, **{**command.context_settings, **settings})


def render() -> str:
    found = list(contexts(_context(main, "audit", terminal_width=WIDTH, max_content_width=WIDTH)))
    toc = [f"- [`{c.command_path}`](#{c.command_path.replace(' ', '-')})" for c in found]
    sections = [f"## {c.command_path}\n\n```text\n{c.get_help()}\n```\n" for c in found]
    return "\n".join([HEADER, *toc, "", *sections])


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
