"""`python -m cosguard.cli`: the `cosguard` command without its console script."""
import sys

from . import main

sys.exit(main())
