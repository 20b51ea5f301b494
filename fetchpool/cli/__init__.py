"""The command line: Typer options, terminal output and exit status (the only place Rich is used)."""
