"""The ``snn-msa`` command line: a thin shell over the library.

Each command lives in its own module and is added to the group here, directly.
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


# The commands are attached here, one line each (their modules import nothing from this one).
from .data_cmd import data  # noqa: E402
from .diagnose_cmd import diagnose  # noqa: E402
from .energy_cmd import energy  # noqa: E402
from .experiments_cmd import ablate, compare, grid  # noqa: E402
from .models_cmd import models  # noqa: E402
from .predict_cmd import predict  # noqa: E402
from .train_cmd import eval_, train  # noqa: E402

main.add_command(models)
main.add_command(data)
main.add_command(train)
main.add_command(eval_)
main.add_command(predict)
main.add_command(energy)
main.add_command(grid)
main.add_command(ablate)
main.add_command(compare)
main.add_command(diagnose)
