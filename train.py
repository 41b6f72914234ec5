"""Train a LeNet-5 variant: ``python train.py model=classic`` (see src/lenet5/conf/train.yaml).

The repo's entry point; installed, the same command is ``lenet5-train`` or ``python -m lenet5.train``.
"""

from lenet5.train import cli

if __name__ == "__main__":
    cli()
