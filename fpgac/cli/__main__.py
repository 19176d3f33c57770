"""``python -m fpgac.cli``: the same as the ``fpgac`` command."""

import sys

from fpgac.cli import main

sys.exit(main())
