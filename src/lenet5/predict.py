"""``python -m lenet5.predict``: the command line of :mod:`lenet5.serving.predict`."""

import sys

from lenet5.serving.predict import main

if __name__ == "__main__":
    sys.exit(main())
