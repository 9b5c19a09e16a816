"""python -m prepost: the prepost command (prepost.cli)."""

import sys

from prepost.cli import main

sys.exit(main())
