"""``python -m wave_executor``: the ``wave-executor`` command."""

import sys

if __name__ == "__main__":
    from wave_executor.cli import main

    sys.exit(main())
