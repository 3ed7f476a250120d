"""The paper's conventional baselines in plain PyTorch, one module per model.

Each is written from its paper and modelled on MMSA 2.2.1's implementation
(thuiar/MMSA), with MMSA's published hyperparameters as the zoo card's
defaults (``zoo/baselines.py``). All share SGMT's contract: ``forward(text,
audio, vision, audio_lengths=None, vision_lengths=None, text_lengths=None)``
returns a :class:`~snn_msa.model.ModelOutput` whose ``"M"`` is the prediction,
and ``loss(output, labels)`` is the L1 loss MMSA trains them with.
"""

from .ef_lstm import EFLSTM, EFLSTMConfig
from .lf_dnn import LFDNN, LFDNNConfig
from .lmf import LMF, LMFConfig
from .mfn import MFN, MFNConfig
from .mlf_dnn import MLFDNN, MLFDNNConfig
from .mlmf import MLMF, MLMFConfig
from .mult import MulT, MulTConfig
from .tfn import TFN, TFNConfig

__all__ = ["EFLSTM", "EFLSTMConfig", "LFDNN", "LFDNNConfig", "LMF", "LMFConfig", "MFN", "MFNConfig", "MLFDNN",
           "MLFDNNConfig", "MLMF", "MLMFConfig", "MulT", "MulTConfig", "TFN", "TFNConfig"]
