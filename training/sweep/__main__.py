"""``python -m training.sweep``: the same command as ``python -m training sweep``."""
import sys

from .cli import main

sys.argv[0] = "python -m training.sweep"  # argparse's prog, instead of "__main__.py"
main()
