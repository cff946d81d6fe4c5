from seapo.inject.error_types import ErrorType, parse_error_types
from seapo.inject.prompts import build_injection_prompt, clean_injection_output


def test_prompt_holds_question_response_type_and_description():
    prompt = build_injection_prompt("What is 2+2?", "2+2 = 4.", ErrorType.LOGIC)
    for part in ("What is 2+2?", "2+2 = 4.", "logic", ErrorType.LOGIC.description, "Output only the revised"):
        assert part in prompt


def test_preambles_quotes_fences_and_notes_are_stripped():
    original = "The capital of France is Paris."
    assert clean_injection_output("Here is the revised response:\nThe capital is Lyon.", original) == \
        "The capital is Lyon."
    assert clean_injection_output("Sure! Here's the modified answer: The capital is Lyon.", original) == \
        "The capital is Lyon."
    assert clean_injection_output("**Revised response:** The capital is Lyon.", original) == "The capital is Lyon."
    assert clean_injection_output('"The capital is Lyon."', original) == "The capital is Lyon."
    assert clean_injection_output("```\nThe capital is Lyon.\n```", original) == "The capital is Lyon."
    assert clean_injection_output("The capital is Lyon.\n\nNote: I changed Paris to Lyon.", original) == \
        "The capital is Lyon."
    # Code answers keep their fences when the original had them.
    code = "```python\nprint(1)\n```"
    assert clean_injection_output("```python\nprint(2)\n```", code) == "```python\nprint(2)\n```"


def test_parse_error_types():
    assert parse_error_types("all") == tuple(ErrorType)
    assert parse_error_types("logic,correctness") == (ErrorType.LOGIC, ErrorType.CORRECTNESS)
    assert parse_error_types(None) == tuple(ErrorType)
    try:
        parse_error_types("spelling")
    except ValueError as exc:
        assert "correctness" in str(exc)
    else:
        raise AssertionError("unknown type accepted")
