"""LLM backends behind one interface: :class:`GenerationBackend`."""

from seapo.backends.base import (
    BackendConfig,
    Conversation,
    Generation,
    GenerationBackend,
    GenerationConfig,
    Message,
    available_backends,
    backend_config_class,
    make_backend,
    register_backend,
)

__all__ = [
    "BackendConfig",
    "Conversation",
    "Generation",
    "GenerationBackend",
    "GenerationConfig",
    "Message",
    "available_backends",
    "backend_config_class",
    "make_backend",
    "register_backend",
]
