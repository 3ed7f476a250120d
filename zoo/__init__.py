"""The snn-msa model zoo (``from snn_msa import zoo``).

>>> from snn_msa import zoo
>>> zoo.list_models()
['sgmt-av', 'sgmt-ta', 'sgmt-tav', 'sgmt-tav-ann', 'sgmt-tv']
"""

from snn_msa.registry import ModelCard, UnknownModelError, create_model, get_card, list_models, register_model

from . import sgmt  # noqa: F401  (registers the SGMT entries)

__all__ = ["ModelCard", "UnknownModelError", "create_model", "get_card", "list_models", "register_model"]
