"""Seeing inside a trained LeNet-5: every layer's response to one image, as a figure
(``python -m lenet5.inspect``) or live on a page you draw on (``python -m lenet5.demo``)."""
