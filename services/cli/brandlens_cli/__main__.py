"""``python -m brandlens_cli``: the ``brandlens`` command."""

from brandlens_cli.main import cli

if __name__ == "__main__":
    cli()
