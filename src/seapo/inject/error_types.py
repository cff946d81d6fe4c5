"""The three error types SeaPO amplifies, with the descriptions the LLM injector is given."""

from __future__ import annotations

from enum import Enum


class ErrorType(str, Enum):
    CORRECTNESS = "correctness"
    LOGIC = "logic"
    HALLUCINATION = "hallucination"

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self]

    # Behave as the plain string everywhere (sets, dict keys, f-strings): "logic" == ErrorType.LOGIC.
    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value


DESCRIPTIONS: dict[ErrorType, str] = {
    ErrorType.CORRECTNESS: (
        "Correctness errors: factual mistakes or wrong results, such as an incorrect fact, a wrong "
        "calculation or final answer, a misused formula, or a tool or method applied incorrectly."
    ),
    ErrorType.LOGIC: (
        "Logic errors: flawed reasoning, such as a contradiction between statements, a conclusion "
        "that does not follow from the premises, circular reasoning, or steps in the wrong order."
    ),
    ErrorType.HALLUCINATION: (
        "Hallucination errors: invented content with no basis in the question or in reality, such "
        "as made-up entities, names, numbers, statistics, studies, sources or details."
    ),
}

ALL_ERROR_TYPES: tuple[ErrorType, ...] = tuple(ErrorType)


def parse_error_types(values: str | list[str] | tuple[str, ...] | None) -> tuple[ErrorType, ...]:
    """``"logic,correctness"`` or ``["logic"]`` -> types; None or ``all`` -> all three."""
    if values is None:
        return ALL_ERROR_TYPES
    if isinstance(values, ErrorType):
        return (values,)
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    names = [v.value if isinstance(v, ErrorType) else str(v).strip().lower() for v in values]
    if names == ["all"]:
        return ALL_ERROR_TYPES
    try:
        return tuple(dict.fromkeys(ErrorType(n) for n in names))
    except ValueError:
        raise ValueError(f"unknown error type in {names}: choose from "
                         f"{', '.join(t.value for t in ErrorType)}") from None
