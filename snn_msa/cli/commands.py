"""The list of ``snn-msa`` commands; each module below defines one command or group."""

from __future__ import annotations

ALL: list = []

from .models_cmd import models  # noqa: E402

ALL.append(models)

from .data_cmd import data  # noqa: E402
ALL.append(data)

from .train_cmd import eval_, train  # noqa: E402
ALL.extend([train, eval_])

from .predict_cmd import predict  # noqa: E402
ALL.append(predict)

from .energy_cmd import energy  # noqa: E402
ALL.append(energy)

from .experiments_cmd import ablate, compare, grid  # noqa: E402
ALL.extend([grid, ablate, compare])

from .diagnose_cmd import diagnose  # noqa: E402
ALL.append(diagnose)
