"""``python -m lenet5.export``: the command line of :mod:`lenet5.serving.export`."""

import sys

from lenet5.serving.export import main

if __name__ == "__main__":
    sys.exit(main())
