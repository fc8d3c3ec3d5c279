"""`python -m bnsim` runs the command-line interface."""

import sys

from bnsim.cli import main

sys.exit(main())
