"""``snn-msa models``: the zoo entries with their cards (from :mod:`snn_msa.registry`)."""

from __future__ import annotations

import json

import click

from snn_msa.recipe import Recipe
from snn_msa.registry import model_cards, zoo_table


@click.command("models")
@click.argument("pattern", required=False)
@click.option("--json", "json_", is_flag=True, help="Print the cards as JSON.")
@click.option("--markdown", is_flag=True, help="Print the zoo table in Markdown (as in docs/model.md).")
def models(pattern: str | None, json_: bool, markdown: bool) -> None:
    """List the zoo's models (optionally those matching a glob PATTERN) with their cards.

    \b
    Examples:
      snn-msa models
      snn-msa models 'sgmt-t*' --json
    """
    cards = model_cards(pattern)
    if not cards:
        raise click.ClickException(f"no model matches {pattern!r}; run 'snn-msa models' for the list.")
    if json_:
        click.echo(json.dumps(cards, indent=2))
        return
    if markdown:
        click.echo(zoo_table(cards))
        return
    for card in cards:
        click.echo(f"{card['name']}: {card['summary']}")
        twin = f", twin {card['twin']}" if card["twin"] else ""
        click.echo(f"    modalities={','.join(card['modalities'])} spiking={'yes' if card['spiking'] else 'no'}{twin} "
                   f"parameters={card['parameters']:,} (CH-SIMS dims)")
        click.echo(f"    recipe on {card['dataset']}: {Recipe(**card['recipe_on_dataset']).describe()}"
                   + (f" ({card['recipe_source']})" if card["recipe_source"] else ""))
        if card["paper"]:
            click.echo(f"    from: {card['paper']}")
        for row in card["paper_rows"]:
            shown = ", ".join(f"{k}={v}" for k, v in row["results"].items())
            click.echo(f"    paper {row['table']} ({row['dataset']}), row {row['row']}: {shown}")
        if card["notes"]:
            click.echo(f"    note: {card['notes']}")
