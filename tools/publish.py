"""Publish a trained checkpoint to the Hugging Face Hub (``zoo publish``; see its --help).

python tools/publish.py CHECKPOINT --variant NAME --repo-id ORG/NAME --tag TAG [--dry-run]
"""

import sys

from zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["publish", *sys.argv[1:]]))
