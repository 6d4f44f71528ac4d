"""``python -m dsopt.cli ARGS`` is ``dsopt ARGS``."""
import sys

from dsopt.cli import main

sys.exit(main())
