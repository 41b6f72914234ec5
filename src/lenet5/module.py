"""Kept so that ``from lenet5.module import LeNet5Module`` still works; it lives in lenet5.training."""

from lenet5.training.module import NUM_CLASSES, LeNet5Module

__all__ = ["NUM_CLASSES", "LeNet5Module"]
