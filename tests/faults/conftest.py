"""The fault suite reuses the promotion unit tests' world of fakes (``world``) where a scenario is about
messages, not storage."""

from tests.unit.promotion.conftest import world

__all__ = ["world"]
