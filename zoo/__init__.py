"""The snn-msa model zoo (``from snn_msa import zoo``).

>>> from snn_msa import zoo
>>> zoo.list_models()
['ef-lstm', 'lf-dnn', 'lmf', 'mfn', 'mlf-dnn', 'mlmf', 'mult', 'sgmt-av', 'sgmt-av-ann', 'sgmt-ta', 'sgmt-ta-ann', 'sgmt-tav', 'sgmt-tav-ann', 'sgmt-tv', 'sgmt-tv-ann', 'tfn']
"""

from snn_msa.recipe import Recipe
from snn_msa.registry import ModelCard, PaperRow, UnknownModelError, create_model, get_card, list_models, register_model

from . import baselines, sgmt  # noqa: F401  (register the SGMT and baseline entries)

__all__ = ["ModelCard", "PaperRow", "Recipe", "UnknownModelError", "create_model", "get_card", "list_models", "register_model"]
