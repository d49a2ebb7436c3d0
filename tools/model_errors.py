"""The error every model-building module raises: its own module, so the chat-model factory
(`chat_models`), the embedded model (`local_model`) and its weights (`local_weights`) share it
without importing each other in a circle."""

from __future__ import annotations


class ModelConfigError(Exception):
    """A model spec, key, endpoint or local install problem; the message is one line."""
