"""The demo's one failure: something it needs failed; the message says what and where to look."""

__all__ = ["DemoError"]


class DemoError(Exception):
    """Something the demo needs failed; the message says what and where to look."""
