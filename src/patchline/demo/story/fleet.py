"""The simulated fleet of the 2018 story: who each phone is, drawn from a seed.

Every phone is a real device directory run by the real agent; this module only says
what kind of phone it is (model, region, deployment date, how it is connected) and
when its owner acts (the hour it polls, the day a mailed SD card arrives), all drawn
from one seeded random generator so a run can be repeated exactly.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, replace
from datetime import date, timedelta

MODELS = ("aurora", "nimbus")
#: Regions and their share of the fleet; KP is outside every licence.
REGIONS = (("DE", 0.35), ("FR", 0.2), ("US", 0.2), ("BR", 0.1), ("IN", 0.12), ("KP", 0.03))


class Link(enum.StrEnum):
    """How a phone reaches updates."""

    ONLINE = "online"  # polls the server, then mirrors, about once a day
    OFFLINE = "offline"  # no usable network: updates only from SD cards


@dataclass(frozen=True)
class Phone:
    """One simulated phone's fixed facts."""

    index: int
    model: str
    region: str
    deployed_on: date
    link: Link
    #: Drawn once: this owner leaves the phone switched off for a long stretch.
    away: bool = False

    @property
    def name(self) -> str:
        """The phone's name and serial number, e.g. ``phone-00042``."""
        return f"phone-{self.index:05d}"


@dataclass(frozen=True)
class FleetShape:
    """How the fleet is drawn."""

    size: int
    seed: int = 2018
    offline_share: float = 0.2
    #: Phones sold from stock after the ban (deployed then; outside the licence).
    sold_during_ban_share: float = 0.08
    #: Online phones switched off from a week before the licence until it lapsed.
    away_share: float = 0.004
    #: Chance an online phone is connected on a given day.
    daily_connect: float = 0.8


def draw_fleet(shape: FleetShape, first_sale: date, ban: date, last_sale: date) -> list[Phone]:
    """``shape.size`` phones: most deployed between ``first_sale`` and the ban, a share
    sold from stock between the ban and ``last_sale``."""
    rng = random.Random(shape.seed)
    codes = [code for code, _ in REGIONS]
    weights = [weight for _, weight in REGIONS]
    phones = []
    for index in range(shape.size):
        if rng.random() < shape.sold_during_ban_share:
            deployed = _day_between(rng, ban + timedelta(days=1), last_sale)
        else:
            deployed = _day_between(rng, first_sale, ban - timedelta(days=60))
        phones.append(
            Phone(
                index=index,
                model=MODELS[0] if rng.random() < 0.6 else MODELS[1],
                region=rng.choices(codes, weights)[0],
                deployed_on=deployed,
                link=Link.OFFLINE if rng.random() < shape.offline_share else Link.ONLINE,
            )
        )
    online = [p.index for p in phones if p.link is Link.ONLINE]
    for index in rng.sample(online, round(len(online) * shape.away_share)):
        phones[index] = replace(phones[index], away=True)
    return phones


def connected(shape: FleetShape, phone: int, day: date) -> bool:
    """Whether an online phone has a network on ``day`` (drawn from the seed alone)."""
    return _draw(shape.seed, phone, day) < shape.daily_connect


def poll_minute(shape: FleetShape, phone: int, day: date) -> int:
    """The minute of ``day`` at which the phone polls, or its owner inserts a card."""
    return int(_draw(shape.seed + 1, phone, day) * 24 * 60)


def _draw(seed: int, phone: int, day: date) -> float:
    return random.Random(f"{seed}/{phone}/{day.isoformat()}").random()


def _day_between(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange((end - start).days + 1))
