"""The command reference of docs/cli.md, generated from the commands' own help.

Regenerate with ``python -m snn_msa.cli.reference > docs/cli.md``; a test fails
when the file and the commands disagree.
"""

from __future__ import annotations

import click
from click.testing import CliRunner


def _walk(group: click.Group, prefix: list[str]):
    yield prefix
    for name in sorted(group.commands):
        command = group.commands[name]
        if isinstance(command, click.Group):
            yield from _walk(command, prefix + [name])
        else:
            yield prefix + [name]


def cli_reference() -> str:
    """Markdown with the ``--help`` text of every command, in a fixed 80-column layout."""
    from snn_msa.cli import main

    runner = CliRunner()
    parts = [
        "# Command reference",
        "",
        "Generated from the commands' own help by `python -m snn_msa.cli.reference > docs/cli.md`.",
        "Every command exits 1 with a message that says what to do when its input is wrong.",
    ]
    for path in _walk(main, []):
        result = runner.invoke(main, [*path, "--help"], prog_name="snn-msa", terminal_width=80)
        title = " ".join(["snn-msa", *path])
        parts += ["", f"## `{title}`", "", "```", result.output.rstrip(), "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(cli_reference(), end="")
