"""Command-line interface: ``wiml <subcommand>``; every subcommand module has ``main(argv) -> int``."""
