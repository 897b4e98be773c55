"""Puts tools/ on the import path, so the tests import the scripts and tools/cbamtools as the scripts themselves do."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
