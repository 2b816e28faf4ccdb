import sys

from nexflow.cli import main

sys.exit(main())
