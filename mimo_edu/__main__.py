import sys

from mimo_edu.cli import main

sys.exit(main())
