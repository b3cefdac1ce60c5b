"""`python -m dealer_feed` = the `dealer-feed` command."""

import sys

from dealer_feed.cli import main

sys.exit(main())
