"""``python -m prepost``: the prepost command (prepost.cli)."""

import sys

from prepost.cli import main

if __name__ == "__main__":
    sys.exit(main())
