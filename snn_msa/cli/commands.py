"""The list of ``snn-msa`` commands; each module below defines one command or group."""

from __future__ import annotations

ALL: list = []

from .models_cmd import models  # noqa: E402

ALL.append(models)
