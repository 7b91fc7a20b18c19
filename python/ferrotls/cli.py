"""The `ferrotls` command line.

    ferrotls selfcheck        check every primitive of the Rust core
    ferrotls demo             a handshake between a ferrotls client and server, explained step by step
    ferrotls s_client ...     a TLS client in the manner of `openssl s_client`
    ferrotls s_server ...     a TLS server in the manner of `openssl s_server`

s_client and s_server take openssl's single-dash long options (-connect, -CAfile, ...).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    from . import cli_client, cli_server

    parser = argparse.ArgumentParser(prog="ferrotls", description="TLS for Python with a Rust core.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser("selfcheck", help="check every primitive of the Rust core")
    commands.add_parser(
        "demo",
        help="a TLS 1.2 handshake, resumption and bulk transfer between a ferrotls client and server, explained",
        description="Runs a ferrotls server and client on 127.0.0.1 with a throwaway CA and explains each step.",
    )
    # Single-dash long options, as openssl spells them; no abbreviations (-c is not -cert).
    client = commands.add_parser(
        "s_client", prefix_chars="-", allow_abbrev=False, add_help=False, help="connect like `openssl s_client`",
        description="Connects, handshakes, reports like `openssl s_client`, then relays stdin and stdout.",
    )
    _add_help(client)
    cli_client.add_arguments(client)
    server = commands.add_parser(
        "s_server", prefix_chars="-", allow_abbrev=False, add_help=False, help="serve like `openssl s_server`",
        description="Serves TLS 1.2 like `openssl s_server`: echo (default), -rev or -www; a thread per connection.",
    )
    _add_help(server)
    cli_server.add_arguments(server)
    return parser


def _add_help(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-help", "-h", "--help", action="help", help="show this help and exit")


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "selfcheck":
        from . import selfcheck

        return selfcheck.run()
    if args.command == "demo":
        from . import cli_demo

        return cli_demo.run()
    if args.command == "s_client":
        from . import cli_client

        return cli_client.run(args)
    if args.command == "s_server":
        from . import cli_server

        return cli_server.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
