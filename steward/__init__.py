"""Steward: the event-driven observability and feedback loop under AI platforms."""

__version__ = "0.1.0"
