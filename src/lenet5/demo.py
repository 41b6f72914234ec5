"""``python -m lenet5.demo``: the command line of :mod:`lenet5.inspection.server`."""

import sys

from lenet5.inspection.server import main

if __name__ == "__main__":
    sys.exit(main())
