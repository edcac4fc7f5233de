"""A module no request may make the service import: importing it leaves a marker file.

The hostile-input tests ask for it as a runner (`kr_testproject.evil_runner.EvilRunner`)
and assert the marker never appears.
"""

from pathlib import Path

_MARKER = Path(__file__).resolve().parents[2] / "data" / "evil_runner_imported"
_MARKER.parent.mkdir(parents=True, exist_ok=True)
_MARKER.write_text("imported\n")


class EvilRunner:
    pass
