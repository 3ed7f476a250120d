"""setup.cfg lists packages by hand (snn_msa.zoo lives in zoo/); keep the list complete."""

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_setup_cfg():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "snn_msa").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    found.add("snn_msa.zoo")
    assert found == listed


def test_version_command():
    from click.testing import CliRunner

    from snn_msa import __version__
    from snn_msa.cli import main

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
