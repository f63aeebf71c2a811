"""Test runs write their run folders to a temporary directory, never to reports/."""

import os
import tempfile

os.environ.setdefault("SEGKIT_REPORTS_DIR", tempfile.mkdtemp(prefix="segkit-test-reports-"))
