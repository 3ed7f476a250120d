"""The ``snn-msa`` command line: a thin shell over the library.

Each command lives in its own module and is attached here.
"""

from __future__ import annotations

import click

from snn_msa import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
