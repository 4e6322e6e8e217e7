"""Timeline reads (events are written by the mutations that cause them)."""

from models import TimelineEvent
from resolvers.pagination import Ordering

timeline_event = TimelineEvent.__table__
NEWEST_FIRST = Ordering((timeline_event.c.id,), descending=True)
