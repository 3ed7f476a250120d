"""``snn-msa models``: the zoo entries with their cards."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from snn_msa.registry import get_card, list_models


def model_cards(pattern: str | None = None) -> list[dict]:
    """One dict per registered model: name, card and the model defaults it builds with."""
    from snn_msa.registry import create_model

    cards = []
    for name in list_models(pattern):
        card = get_card(name)
        config = asdict(create_model(name).config)
        config.pop("feature_dims")
        cards.append({"name": name, **asdict(card), "defaults": config})
    return cards


def markdown_table(cards: list[dict]) -> str:
    """The zoo table of docs/model.md, generated from the registry."""
    lines = [
        "| model | what it is | modalities | spiking | d_model / heads / layers | scale1 | strength | paper |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for card in cards:
        d = card["defaults"]
        lines.append(
            f"| `{card['name']}` | {card['summary']} | {'+'.join(m[0].upper() for m in d['modalities'])} "
            f"| {'yes' if d['spiking'] else 'no'} | {d['d_model']} / {d['heads']} / {d['single_layers']}+{d['fusion_layers']} "
            f"| {d['scale1']} | {d['neuron']['strength'] if d['spiking'] else '-'} | {card['paper_table']} |"
        )
    return "\n".join(lines)


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
    if json_:
        click.echo(json.dumps(cards, indent=2))
        return
    if markdown:
        click.echo(markdown_table(cards))
        return
    if not cards:
        raise click.ClickException(f"no model matches {pattern!r}; run 'snn-msa models' for the list.")
    for card in cards:
        d = card["defaults"]
        click.echo(f"{card['name']}: {card['summary']}")
        click.echo(
            f"    modalities={','.join(d['modalities'])} d_model={d['d_model']} heads={d['heads']} "
            f"layers={d['single_layers']}+{d['fusion_layers']} scale1={d['scale1']} strength={d['neuron']['strength']} "
            f"spiking={d['spiking']}"
        )
        click.echo(f"    paper: {card['paper_table']}")
        for dataset, results in card["paper_results"].items():
            shown = ", ".join(f"{k}={v}" for k, v in results.items())
            click.echo(f"      {dataset}: {shown}")
