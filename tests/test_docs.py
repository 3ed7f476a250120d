"""Docs that are generated from code must match the code."""

from pathlib import Path

from snn_msa.registry import model_cards, zoo_table

ROOT = Path(__file__).resolve().parents[1]


def test_zoo_table_in_docs_matches_registry():
    text = (ROOT / "docs" / "model.md").read_text()
    table = text.split("<!-- zoo-table:start -->\n", 1)[1].split("\n<!-- zoo-table:end -->", 1)[0]
    assert table == zoo_table(model_cards()), "regenerate with: snn-msa models --markdown"


def test_cli_reference_matches_commands():
    from snn_msa.cli.reference import cli_reference

    assert (ROOT / "docs" / "cli.md").read_text() == cli_reference(), "regenerate: python -m snn_msa.cli.reference > docs/cli.md"


def test_readme_python_example_runs(capsys):
    import re

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "the README should show the Python API"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert "torch.Size([4])" in capsys.readouterr().out
