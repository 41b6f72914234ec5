"""``python -m lenet5.report``: the command line of :mod:`lenet5.results.report`."""

import sys

from lenet5.results.report import main

if __name__ == "__main__":
    sys.exit(main())
