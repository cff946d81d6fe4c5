"""The one-command pipeline: prepare -> inject -> train -> held-out accuracy -> report."""
