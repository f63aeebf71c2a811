"""The segkit command as a module: ``python -m segkit run ...``.

Also the file to hand ``spark-submit`` (``spark-submit [options] .../segkit/__main__.py run
--params shop.yaml``): with ``engine: spark`` the run then uses spark-submit's session, and
every stage kernel attaches to it (see :func:`segkit.engine.share_session`).
"""

import os
import sys

# Run as a file (spark-submit does), Python puts this folder first on sys.path, where
# segkit's own `profile` and `io` packages would shadow the standard library's.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

from segkit.cli import main  # noqa: E402 - after the path is clean

sys.exit(main())
