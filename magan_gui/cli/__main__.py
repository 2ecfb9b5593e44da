"""``python -m magan_gui.cli``: the ``magan`` command without its installed script."""

import sys

from . import main

sys.exit(main())
