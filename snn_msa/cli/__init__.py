"""The ``snn-msa`` command line: a thin shell over the library.

Each command lives in its own module and is attached here.
"""

from __future__ import annotations

import click

from snn_msa import __version__


class _Shell(click.Group):
    """The command group; failures that any command can meet become one line (``Error: ...``, exit 1).

    A full disk or an I/O error while writing (:class:`~snn_msa.atomic.WriteError`)
    and an output folder held by another run
    (:class:`~snn_msa.output_lock.OutputBusyError`) can reach every command that
    writes, so they are turned into ``click.ClickException`` here, once.
    """

    def invoke(self, ctx: click.Context):
        from snn_msa.atomic import WriteError
        from snn_msa.output_lock import OutputBusyError

        try:
            return super().invoke(ctx)
        except (WriteError, OutputBusyError) as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=_Shell, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="snn-msa")
def main() -> None:
    """Spiking-Generated Multimodal Transformer (SGMT) model zoo for multimodal sentiment analysis.

    \b
    Examples:
      snn-msa models
      snn-msa train --model sgmt-tav
      snn-msa train --model sgmt-tav --dataset simsv2 --data ~/data/SIMSv2/unaligned.pkl
      snn-msa energy --model sgmt-tav
      snn-msa data synth --like sims --out sims_synth.pkl
    """


def _attach_commands() -> None:
    from . import commands

    for command in commands.ALL:
        main.add_command(command)


_attach_commands()
