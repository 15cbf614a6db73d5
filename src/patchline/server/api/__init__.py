"""The management API (``/api``): one router per resource, thin views over the domain
services that the CLI calls too. ``api_guard`` signs the caller in before a view runs;
``deps`` hands it to the views with the role each needs."""

from __future__ import annotations

from fastapi import APIRouter

from patchline.server.api import (
    audit,
    device_facts,
    devices,
    groups,
    proposals,
    releases,
    rollouts,
    rules,
    support,
    tokens,
    webhooks,
)

#: Every router of the management API, in the order the app includes them.
ROUTERS: tuple[APIRouter, ...] = (
    releases.router,
    devices.router,
    device_facts.router,
    rules.router,
    rollouts.router,
    groups.router,
    support.router,
    audit.router,
    tokens.router,
    proposals.router,
    webhooks.router,
)
