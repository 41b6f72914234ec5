"""The LeNet-5 model family in plain PyTorch (no Lightning here)."""

from lenet5.models.activations import ACTIVATIONS, ScaledTanh
from lenet5.models.build import build_model, model_config
from lenet5.models.connectivity import CONNECTIVITIES
from lenet5.models.heads import HEADS, LinearHead, RBFHead, digit_codes
from lenet5.models.init import INITS
from lenet5.models.lenet5 import INPUT_SIZE, LeNet5
from lenet5.models.normalization import NORMALIZATIONS, InputNormalization
from lenet5.models.pooling import POOLINGS, TrainableSubsampling

__all__ = [
    "ACTIVATIONS",
    "CONNECTIVITIES",
    "HEADS",
    "INITS",
    "INPUT_SIZE",
    "NORMALIZATIONS",
    "POOLINGS",
    "InputNormalization",
    "LeNet5",
    "LinearHead",
    "RBFHead",
    "ScaledTanh",
    "TrainableSubsampling",
    "build_model",
    "digit_codes",
    "model_config",
]
