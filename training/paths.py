"""Where the offline work writes: the service's model folder and the tests' reference data.

Plain paths, no imports, so that the export and reference scripts can run in their throwaway
torch environment (training/export.py) as well as in the project's.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "services" / "detector" / "models"  # heads, calibrations, cards, onnx/
TEST_DATA = REPO / "tests" / "data" / "detector"
