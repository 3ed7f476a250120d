"""``snn-msa energy`` output: a summary that fits a terminal by default, every layer on request."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from snn_msa.cli import main
from snn_msa.energy import energy_report, format_markdown, format_report, format_summary
from snn_msa.energy.format import TOP_LAYERS, WIDTH

SMALL = ["--d-model", "16", "--heads", "2", "--batch-size", "4"]


@pytest.fixture(scope="module")
def report():
    return energy_report("sgmt-tav", samples=2, batch_size=2, overrides={"d_model": 16, "heads": 2})


def words(text: str) -> str:
    return " ".join(text.split())


def test_summary_fits_a_terminal_and_holds_totals_ratio_and_assumptions(report):
    text = format_summary(report)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    assert len(lines) < len(report["layers"])  # far shorter than the per-layer table
    assert f"{report['totals']['ratio']:.3f}" in text and f"{report['memory_aware']['ratio']:.3f}" in text
    flat = words(text)
    assert all(words(a) in flat for a in report["assumptions"])


def test_summary_lists_the_largest_layers_of_each_model(report):
    text = format_summary(report)
    for side in ("snn", "ann"):
        rows = [r for r in report["layers"] if r["model"] == side]
        energies = sorted((r["energy_pj"] for r in rows), reverse=True)
        cut = energies[TOP_LAYERS - 1]
        section = text.split("Spiking model" if side == "snn" else "Twin ")[1].split("\n\n")[0]
        listed = [line.split()[0] for line in section.splitlines()[3:]]
        assert len(listed) == TOP_LAYERS
        assert all(next(r for r in rows if r["name"] == name)["energy_pj"] >= cut for name in listed), (side, listed)
        assert all(r["name"] in listed for r in rows if r["energy_pj"] > cut)


def test_full_table_and_markdown_hold_every_layer(report):
    full, markdown = format_report(report), format_markdown(report)
    for row in report["layers"]:
        assert row["name"] in full
    table_rows = [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    names = [line.split(" | ")[0][2:] for line in table_rows]
    assert sorted(n for n in names if n not in ("layer", "per sample", "SNN sgmt-tav", "ANN sgmt-tav-ann", "SNN / ANN")) \
        == sorted(r["name"] for r in report["layers"])


def test_cli_default_is_the_summary_and_never_warns_on_built_in_data():
    result = CliRunner().invoke(main, ["energy", "--model", "sgmt-tav", *SMALL])
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= WIDTH
    assert "asked; the split has no more" not in result.output and "Warning" not in result.output
    assert "largest of" in result.output
    flags = CliRunner().invoke(main, ["energy", "--model", "sgmt-tav", *SMALL, "--samples", "2", "--layers"])
    assert flags.exit_code == 0 and "single_modal.text.0.attention.query" in flags.output, flags.output


def test_cli_default_samples_are_the_whole_built_in_test_split():
    from snn_msa.data.synthetic import DEFAULT_SIZES

    result = CliRunner().invoke(main, ["energy", "--model", "sgmt-tav", *SMALL, "--json"])
    data = json.loads(result.output)["data"]
    assert data["samples"] == data["requested_samples"] == DEFAULT_SIZES[2]


def test_json_and_markdown_exclude_each_other():
    result = CliRunner().invoke(main, ["energy", "--model", "sgmt-tav", "--json", "--markdown"])
    assert result.exit_code == 1 and "exclude each other" in result.output and "Traceback" not in result.output
