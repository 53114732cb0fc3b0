"""``python -m localaws serve [--host H] [--port P] [--run-commands]``."""

import sys

from .server import main

sys.exit(main())
