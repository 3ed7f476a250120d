"""snn-msa: the Spiking-Generated Multimodal Transformer (SGMT) and a model zoo
for multimodal sentiment analysis, built on SpikingJelly 2.x.

>>> from snn_msa import zoo
>>> "sgmt-tav" in zoo.list_models()
True
"""

import logging

__version__ = "0.1.0"

# SpikingJelly imports torch's Triton probe, which logs a warning on every
# CPU-only start; it says nothing about this library's behaviour.
logging.getLogger("torch._library.triton").setLevel(logging.ERROR)


def __getattr__(name: str):
    # `from snn_msa import zoo` without importing torch-heavy modules eagerly.
    if name == "zoo":
        import importlib

        return importlib.import_module("snn_msa.zoo")
    raise AttributeError(f"module 'snn_msa' has no attribute {name!r}")
