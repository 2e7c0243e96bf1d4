"""`python -m reclake.cli ...`: the same as the `reclake` command."""

import sys

from reclake.cli import main

sys.exit(main())
