"""Make ``benchmarks/`` importable (``scenarios``, ``scoring``, ``accuracy``) for tests/test_accuracy.py."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
