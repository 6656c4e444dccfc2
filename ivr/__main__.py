"""Allow ``python -m ivr``."""

import sys

from ivr.cli.main import main

sys.exit(main())
