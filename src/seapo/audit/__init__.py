"""The shortcut audit: can a shallow word n-gram classifier tell negatives from positives?

If it can, a policy trained on the pairs can learn the surface cue (be shorter, never negate, never
cite a source) instead of avoiding the error. docs/audit.md says how to read the figures.

    from seapo.audit import AuditConfig, audit_file, audit_pairs
    report = audit_file("run/pairs.jsonl")           # any pairs file (seapo's, DPO, UltraFeedback, ...)
    report.per_type["hallucination"].accuracy        # 0.5: no shortcut; 1.0: every negative recognisable
"""

from seapo.audit.config import AuditConfig
from seapo.audit.core import NOT_ENOUGH, OVERALL, AuditPair, AuditReport, TypeAudit, audit_pairs, audit_transfer
from seapo.audit.read import PairsFile, audit_file, read_pairs

__all__ = ["NOT_ENOUGH", "OVERALL", "AuditConfig", "AuditPair", "AuditReport", "PairsFile", "TypeAudit",
           "audit_file", "audit_pairs", "audit_transfer", "read_pairs"]
