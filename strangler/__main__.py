"""`python -m strangler VERB ...`: the same as the `strangler` command."""

import sys

from strangler.cli import main

sys.exit(main())
