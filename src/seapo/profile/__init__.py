"""``seapo profile``: the policy's own error-type distribution (its answers, judged against references)."""

from seapo.profile.config import ProfileConfig
from seapo.profile.run import ProfileResult, profile

__all__ = ["ProfileConfig", "ProfileResult", "profile"]
