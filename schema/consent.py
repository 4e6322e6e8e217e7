"""Marketing consent as a customer shows it: one `MarketingConsent` per channel."""

from datetime import datetime

import strawberry

from resolvers import consent as consent_q
from schema.enums import MarketingState, OptInLevel


@strawberry.type(description="What a customer agreed to receive on one channel.")
class MarketingConsent:
    state: MarketingState
    opt_in_level: OptInLevel | None = strawberry.field(description="Set when SUBSCRIBED.")
    updated_at: datetime | None = strawberry.field(description="When the state last changed.")
    source: str | None = strawberry.field(
        description="Where the change came from: what the client sent (e.g. checkout), "
        "else staff, customer or import."
    )


def consent_of(obj: object, channel: str) -> MarketingConsent:
    """A channel's consent from the customer's private `{channel}_marketing_*` fields
    (resolvers.consent.MARKETING, which the compiled path reads too)."""
    return MarketingConsent(**consent_q.MARKETING[channel].values(obj))
