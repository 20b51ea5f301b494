"""The command line: options, terminal output, exit status (the only place Rich is used)."""
