"""LeNet-5 variants on MNIST-style data: the paper's network with every design choice switchable."""

__version__ = "0.1.0"
