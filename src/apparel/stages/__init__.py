"""Stage functions: what the CLI commands and the kfp components call, one module per stage, thin over
the library."""
