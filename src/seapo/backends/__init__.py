"""LLM backends behind one interface: :class:`GenerationBackend` (construct, load, generate, close)."""

from seapo.backends.base import (
    BACKENDS,
    BackendConfig,
    Completion,
    Conversation,
    Generation,
    GenerationBackend,
    GenerationRequest,
    Message,
    available_backends,
    backend_config,
    make_backend,
    register_backend,
)

__all__ = [
    "BACKENDS",
    "BackendConfig",
    "Completion",
    "Conversation",
    "Generation",
    "GenerationBackend",
    "GenerationRequest",
    "Message",
    "available_backends",
    "backend_config",
    "make_backend",
    "register_backend",
]
