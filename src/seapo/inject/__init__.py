"""Error injection: error types, injectors (LLM, rules), verification, strategies, resumable runs."""
