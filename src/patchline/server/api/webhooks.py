"""``/api/webhooks``: subscriptions to signed event notifications, and their deliveries
(admins only; docs/webhooks.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path as PathParam
from fastapi import Query
from sqlalchemy.orm import Session

from patchline.server.api.bodies import ResendBody, SubscriptionBody
from patchline.server.api.deps import Rt, WebhookAdmin, actor, in_session
from patchline.server.api.documented_errors import api_router
from patchline.server.api.schemas import DeliveryOut, NewSubscriptionOut, Resent, SubscriptionOut
from patchline.webhooks import subscriptions

router = api_router(tags=["webhooks"])
SubscriptionId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


@router.post("/webhooks", status_code=201)
async def add_webhook(rt: Rt, body: SubscriptionBody, caller: WebhookAdmin) -> NewSubscriptionOut:
    """Subscribe a URL to events; the answer carries the signing secret, shown this once.
    422 for an unknown event or a URL that is not http(s)."""
    now = rt.clock.now()

    def add(session: Session) -> NewSubscriptionOut:
        new = subscriptions.add_subscription(
            session, body.url, body.events, actor(caller), now, body.secret, body.description
        )
        shown = SubscriptionOut.model_validate(new.row).model_dump()
        return NewSubscriptionOut(**shown, secret=new.secret)

    return await in_session(rt, add)


@router.get("/webhooks")
async def list_webhooks(rt: Rt, _caller: WebhookAdmin) -> list[SubscriptionOut]:
    """The live subscriptions (never their secrets)."""
    return await in_session(
        rt,
        lambda s: [SubscriptionOut.model_validate(r) for r in subscriptions.list_subscriptions(s)],
    )


@router.delete("/webhooks/{subscription_id:int}")
async def remove_webhook(
    rt: Rt, subscription_id: SubscriptionId, caller: WebhookAdmin
) -> SubscriptionOut:
    """Stop sending to a subscription; 404 when there is none."""
    now = rt.clock.now()

    def remove(session: Session) -> SubscriptionOut:
        row = subscriptions.remove_subscription(session, subscription_id, actor(caller), now)
        return SubscriptionOut.model_validate(row)

    return await in_session(rt, remove)


@router.get("/webhooks/deliveries")
async def list_deliveries(
    rt: Rt,
    _caller: WebhookAdmin,
    state: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[DeliveryOut]:
    """Messages, newest first, with their attempts and last error; ``state=failed`` lists
    what could not be delivered."""
    return await in_session(
        rt,
        lambda s: [
            DeliveryOut.model_validate(m) for m in subscriptions.list_deliveries(s, state, limit)
        ],
    )


@router.post("/webhooks/deliveries/resend")
async def resend_deliveries(rt: Rt, _caller: WebhookAdmin, body: ResendBody) -> Resent:
    """Send messages again from now with a fresh count of attempts: those named, or every
    failed one; 404 for an unknown id."""
    now = rt.clock.now()
    return await in_session(rt, lambda s: Resent(resent=subscriptions.resend(s, body.ids, now)))
