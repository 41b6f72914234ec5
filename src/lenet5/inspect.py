"""``python -m lenet5.inspect``: the command line of :mod:`lenet5.inspection.cli`."""

import sys

from lenet5.inspection.cli import main

if __name__ == "__main__":
    sys.exit(main())
