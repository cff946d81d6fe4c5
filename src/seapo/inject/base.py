"""The injector protocol: turn a positive response into a negative holding one error type.

An injector is registered by name (:data:`INJECTORS`, by decorator or through the
``seapo.injectors`` entry points) and has the backend lifecycle: constructing it is cheap
(its :meth:`~Injector.fingerprint` already works), :meth:`~Injector.load` acquires what it
needs (``inject`` loads on first use), :meth:`~Injector.close` releases it.

Adding one: a subclass with ``inject`` and ``fingerprint``, decorated with
``@INJECTORS.register("name")`` (docs/architecture.md has a complete example); then
``seapo inject records.jsonl --injector name``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from seapo.config import SeapoConfig
from seapo.data.schema import Record
from seapo.inject.error_types import ErrorType
from seapo.inject.verify import VerifierConfig
from seapo.registry import Registry


@dataclass
class Injection:
    """One attempt at a negative."""

    text: str | None
    """The corrupted response (None when the injector could not produce one)."""
    error_type: ErrorType
    injector: str
    """The injector's registered name (``llm``, ``rules``, ...)."""
    truncated: bool = False
    """The generator stopped at its token limit."""
    details: dict[str, Any] = field(default_factory=dict)
    """How it was made. Rules: ``perturbation``, ``span`` (start, end in the positive),
    ``original``, ``replacement``. LLM: ``raw`` output, ``finish_reason``, ``num_tokens``."""
    error: str | None = None
    """Why the injector failed on this item (a backend error); the pipeline retries it."""

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["error_type"] = self.error_type.value
        return row


class Injector(ABC):
    """Makes negatives for a batch of records, one error type per call."""

    name: ClassVar[str] = "base"
    config_class: ClassVar[type[SeapoConfig]] = SeapoConfig
    """Its settings: an injection run passes its section of the same name (``llm``, ``rules``), or
    ``injector_options`` for a third-party injector."""

    def __init__(self, config: SeapoConfig | None = None, *, verifier: VerifierConfig | None = None) -> None:
        self.config = config if config is not None else self.config_class()
        self.verifier = verifier or VerifierConfig()
        """The thresholds the run's verifier applies; an injector may aim to clear them (rules does)."""

    @abstractmethod
    def inject(self, records: Sequence[Record], error_type: ErrorType, *, attempt: int = 0,
               progress: Callable[[int], None] | None = None) -> list[Injection]:
        """One injection per record, in order. ``attempt`` > 0 asks for a different try (a retry)."""

    @abstractmethod
    def fingerprint(self) -> str:
        """Stable text naming the injector and every setting that changes its output (a resume key)."""

    def load(self) -> None:  # noqa: B027 - optional hook
        """Acquire models or connections (``inject`` may also do it on first use)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


INJECTORS: Registry[type[Injector]] = Registry(
    "injector", "seapo.injectors", builtin_modules=("seapo.inject.llm", "seapo.inject.rules"))
"""Every injector by name."""


def make_injector(name: str, settings: SeapoConfig | dict[str, Any] | None = None, *,
                  verifier: VerifierConfig | None = None) -> Injector:
    """The injector registered as ``name``, built (not loaded) from its settings."""
    cls = INJECTORS.get(name)
    config = settings if isinstance(settings, cls.config_class) else cls.config_class.model_validate(settings or {})
    return cls(config, verifier=verifier)
