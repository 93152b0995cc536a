"""``python -m paramviz.cli``: the same as the ``paramviz`` command."""

from paramviz.cli import main

if __name__ == "__main__":
    main()
