"""LeNet-5 variants on MNIST-style data: the paper's network with every design choice switchable."""

import warnings

__version__ = "0.1.0"

# Lightning 2.6 still builds torch's LeafSpec, which torch >= 2.14 deprecates: library noise that
# every run would print, and nothing a user can act on.
warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
