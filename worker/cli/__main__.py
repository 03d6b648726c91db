"""`python -m worker.cli`: how the demo starts its worker process."""
import sys

from worker.cli import main

sys.exit(main())
