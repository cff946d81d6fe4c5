"""Preference training on injected pairs (KTO, DPO, IPO, SimPO, ORPO) through TRL."""

import sys

from seapo import _callable_stage

# seapo.train(...) runs the stage even after a submodule import has bound this package to the name.
_callable_stage(sys.modules[__name__], "seapo.train.trainer:train")
