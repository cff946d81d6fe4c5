"""The error judge: which of the three error types a response holds, measured against a reference."""

from seapo.judge.base import FINDINGS, JUDGES, Finding, Judge, JudgeItem, Verdict, verdict

__all__ = ["FINDINGS", "JUDGES", "Finding", "Judge", "JudgeItem", "Verdict", "verdict"]
