"""``python -m imgcls.cli`` is the ``imgcls`` command."""

import sys

from imgcls.cli import main

sys.exit(main())
