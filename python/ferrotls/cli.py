"""The `ferrotls` command line."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="ferrotls", description="TLS for Python with a Rust core.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("selfcheck", help="check every primitive of the Rust core")
    args = parser.parse_args(argv)
    if args.command == "selfcheck":
        from . import selfcheck

        return selfcheck.run()
    return 2


if __name__ == "__main__":
    sys.exit(main())
