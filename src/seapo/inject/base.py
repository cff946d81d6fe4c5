"""The injector interface: turn a positive response into a negative with one error type."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from seapo.data.schema import Record
from seapo.inject.error_types import ErrorType


@dataclass
class Injection:
    """One attempt at a negative."""

    text: str | None
    """The corrupted response (None when the injector could not produce one)."""
    error_type: ErrorType
    injector: str
    """``llm`` or ``rules``."""
    truncated: bool = False
    """The generator stopped at its token limit."""
    details: dict[str, Any] = field(default_factory=dict)
    """How it was made. Rules: ``perturbation``, ``span`` (start, end in the positive),
    ``original``, ``replacement``. LLM: ``raw`` output, ``finish_reason``, ``num_tokens``."""

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["error_type"] = self.error_type.value
        return row


class Injector(ABC):
    """Makes negatives for a batch of records, one error type per call."""

    name: str = "base"

    @abstractmethod
    def inject(self, records: Sequence[Record], error_type: ErrorType, *, attempt: int = 0,
               progress: Callable[[int], None] | None = None) -> list[Injection]:
        """One injection per record, in order. ``attempt`` > 0 asks for a different try (a retry)."""

    @abstractmethod
    def fingerprint(self) -> str:
        """Stable text naming the injector and every setting that changes its output."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
