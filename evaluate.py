"""Test a checkpoint: ``python evaluate.py ckpt_path=path/to.ckpt`` (see src/lenet5/conf/evaluate.yaml).

The repo's entry point; installed, the same command is ``lenet5-evaluate`` or ``python -m lenet5.evaluate``.
"""

from lenet5.evaluate import main

if __name__ == "__main__":
    main()
