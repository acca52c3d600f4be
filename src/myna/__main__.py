"""`python -m myna` runs the command line."""

import sys

from myna.cli import main

sys.exit(main())
