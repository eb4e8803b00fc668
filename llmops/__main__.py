"""``python -m llmops``: the same CLI as the ``llmops`` console script."""

from llmops.cli.main import main

if __name__ == "__main__":
    main()
