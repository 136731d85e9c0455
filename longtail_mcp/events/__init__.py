"""Typed events, published with pg_notify in the transaction that makes the change."""

from longtail_mcp.events.bus import EventBus, emit
from longtail_mcp.events.feed import Subscription
from longtail_mcp.events.types import EVENT_TYPES, Event

__all__ = ["EVENT_TYPES", "Event", "EventBus", "Subscription", "emit"]
