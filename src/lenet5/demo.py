"""``python -m lenet5.demo`` (``lenet5-demo``): the command line of :mod:`lenet5.inspection.server`,
which needs the ``demo`` extra (Starlette, uvicorn): without it, one line instead of a traceback."""

import sys

from lenet5.errors import UserError
from lenet5.extras import require


def main(argv: list[str] | None = None) -> int:
    try:
        require("demo", "lenet5-demo")
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from lenet5.inspection.server import main as serve

    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())
