"""LeNet-5 variants on MNIST-style data: the paper's network with every design choice switchable."""

import warnings

__version__ = "0.1.0"

# Lightning 2.6 still builds torch's LeafSpec, which torch >= 2.14 deprecates: library noise that
# every run would print, and nothing a user can act on.
warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)


# The public classes, imported on first use so that ``import lenet5`` stays light.
_EXPORTS = {
    "LeNet5": "lenet5.models",
    "MNISTDataModule": "lenet5.data",
    "LeNet5Module": "lenet5.training.module",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lenet5' has no attribute {name!r}")
