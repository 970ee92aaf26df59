"""``python -m trio_gossip``: see :mod:`trio_gossip.cli`."""

import sys

from .cli import main

sys.exit(main())
