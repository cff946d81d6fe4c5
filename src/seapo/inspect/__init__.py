"""``seapo inspect``: one self-contained HTML file to browse a run's pairs, rejects and figures."""

from seapo.inspect.config import InspectConfig
from seapo.inspect.run import inspect_run

__all__ = ["InspectConfig", "inspect_run"]
