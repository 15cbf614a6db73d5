"""Everything outside the phones in the 2018 story: who signs, where bytes are served.

- the maker's repository (keys, two models, an offline-bundle key, a director) with a
  named successor, a carrier, holding root keys enough to sign a new root alone;
- the maker's update server (director and repository) on a real port, while it lives;
- two mirrors, each a plain static host fed by ``sync_mirror`` from whoever signs now;
- the rules in force, which every release is signed under (``authorise_release``), so
  that phones updating from a mirror or an SD card enforce them with no server;
- SD cards: signed offline bundles, and some damaged in the post.

All of it runs on one simulated clock, moved by the story.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from patchline.clock import FixedClock
from patchline.demo.api_client import call_api
from patchline.demo.scenario import ENROLLMENT_TOKEN, make_image
from patchline.demo.server_thread import ServerThread
from patchline.demo.static_host import StaticHost
from patchline.director.identity import create_director, director_root_path
from patchline.mirror.sync import sync_mirror
from patchline.policy import Amendment, Rule
from patchline.policy.authorise import Authorisation, authorise_release
from patchline.repository import (
    ReleaseRequest,
    Repository,
    RepositoryConfig,
    add_model,
    add_release,
    init_repository,
)
from patchline.repository.bundles import export_bundle
from patchline.repository.continuity import add_successor, handover
from patchline.repository.passphrases import PassphraseSource
from patchline.repository.refresh import refresh
from patchline.repository.under_rules import restrict_to_rules
from patchline.server.app import create_app
from patchline.server.auth import Role, create_token
from patchline.settings import Settings
from patchline.store.db import Database
from patchline.store.migrate import upgrade
from patchline.wire.release import UpdateClass

SUCCESSOR = "carrier"
IMAGE_SIZE = 64 * 1024


@dataclass(frozen=True)
class Signed:
    """A release as signed: its facts and the rule it was authorised under."""

    model: str
    build: str
    security_patch_level: date
    update_class: UpdateClass
    authorisation: Authorisation
    signed_by: str


@dataclass
class Mirror:
    """A static host whose folder ``sync_mirror`` keeps up to date."""

    name: str
    folder: Path
    host: StaticHost

    @property
    def url(self) -> str:
        """The mirror's base URL."""
        return self.host.url


@dataclass
class World:
    """The signers, server, mirrors, rules and cards of the story."""

    workdir: Path
    clock: FixedClock
    settings: Settings
    passphrases: PassphraseSource
    maker: Repository
    mirrors: list[Mirror]
    signer: Repository = field(init=False)
    signer_name: str = "maker"
    rules: list[Rule] = field(default_factory=list)
    amendments: list[Amendment] = field(default_factory=list)
    signed: dict[tuple[str, str], Signed] = field(default_factory=dict)
    server: ServerThread | None = None
    server_url: str = ""
    api_token: str = ""
    restricted_today: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.signer = self.maker

    @classmethod
    def create(
        cls,
        workdir: Path,
        clock: FixedClock,
        settings: Settings,
        passphrases: PassphraseSource,
        models: tuple[str, ...],
    ) -> World:
        """The maker's repository (with a director, an offline key and a named
        successor) and two empty mirrors, serving."""
        home = workdir / "maker"
        maker = init_repository(
            home,
            RepositoryConfig(keys_dir=home / "keys"),
            settings=settings,
            passphrases=passphrases,
            clock=clock,
            offline_key=True,
        )
        for model in models:
            add_model(maker, model)
        create_director(maker)
        add_successor(maker, SUCCESSOR, generate_into=workdir / "carrier-keys")
        mirrors = []
        for name in ("mirror-university", "mirror-carrier-cdn"):
            folder = workdir / name
            folder.mkdir()
            mirrors.append(Mirror(name, folder, StaticHost(folder).start()))
        return cls(workdir, clock, settings, passphrases, maker, mirrors)

    # --- signing ---------------------------------------------------------------------

    def sign_release(
        self, model: str, build: str, security_patch_level: date, update_class: UpdateClass
    ) -> Signed:
        """Sign a release under the rules in force today, with the eligibility they give;
        NotAuthorisedError (nothing signed) when they do not allow it."""
        today = self.clock.now().date()
        granted = authorise_release(
            model=model,
            update_class=update_class,
            rules=self.rules,
            amendments=self.amendments,
            day=today,
        )
        add_release(
            self.signer,
            ReleaseRequest(
                image=self.image(model, build),
                model=model,
                build=build,
                security_patch_level=security_patch_level,
                update_class=update_class,
                eligibility=granted.eligibility,
            ),
        )
        signed = Signed(model, build, security_patch_level, update_class, granted, self.signer_name)
        self.signed[(model, build)] = signed
        return signed

    def image(self, model: str, build: str) -> Path:
        """The image file of a build (made on first use)."""
        path = self.workdir / "images" / f"{model}-{build}.img"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(make_image(model, build, size=IMAGE_SIZE))
        return path

    def keep_fresh(self) -> None:
        """The signer's daily jobs, then the mirrors': re-sign releases the rules now
        narrow (``restricted_today``), refresh expiring metadata, sync every mirror."""
        today = self.clock.now().date()
        restricted = restrict_to_rules(
            self.signer, rules=self.rules, amendments=self.amendments, day=today
        )
        self.restricted_today = [(r.model, r.build) for r in restricted]
        refresh(self.signer)
        self.sync_mirrors()

    def sync_mirrors(self) -> None:
        """Bring every mirror up to the signer's published state (verified first)."""
        root = self.maker.layout.metadata_file("root", 1).read_bytes()
        for mirror in self.mirrors:
            sync_mirror(
                str(self.signer.layout.public_dir), mirror.folder, root=root, clock=self.clock
            )

    def hand_over(self) -> list[str]:
        """The successor takes over signing from a copy of the public tree; returns the
        roles whose keys it replaced."""
        home = self.workdir / SUCCESSOR
        shutil.copytree(self.maker.layout.public_dir, home / "public")
        done = handover(
            home,
            SUCCESSOR,
            self.workdir / "carrier-keys",
            settings=self.settings,
            passphrases=self.passphrases,
            clock=self.clock,
        )
        self.signer = Repository.open(home, self.settings, self.passphrases, self.clock)
        self.signer_name = SUCCESSOR
        return sorted(done.replaced)

    def export_cards(self, builds: dict[str, str]) -> dict[str, Path]:
        """One signed SD card image (bundle folder) per model, for ``builds[model]``."""
        cards = {}
        stamp = self.clock.now().strftime("%Y%m%d")
        for model, build in builds.items():
            folder = self.workdir / "cards" / f"{model}-{build}-{stamp}"
            export_bundle(self.signer, model, folder, build=build)
            cards[model] = folder
        return cards

    def damaged_copy(self, card: Path) -> Path:
        """A copy of ``card`` with one byte of its image flipped, as a card damaged in
        the post would read."""
        damaged = card.with_name(card.name + "-damaged")
        if not damaged.exists():
            shutil.copytree(card, damaged)
            image = max(
                (p for p in (damaged / "targets").rglob("*") if p.is_file()),
                key=lambda p: p.stat().st_size,
            )
            data = bytearray(image.read_bytes())
            data[len(data) // 3] ^= 0x01
            image.write_bytes(bytes(data))
        return damaged

    # --- the maker's server ------------------------------------------------------------

    def start_server(self, port: int) -> None:
        """The maker's update server on 127.0.0.1:``port``, on the story's clock, with an
        admin token for the story, its releases synced and the rules posted."""
        home = self.maker.layout.home
        db_url = f"sqlite:///{self.workdir / 'server.db'}"
        db = Database.connect(db_url)
        upgrade(db)
        with db.transaction() as session:
            self.api_token = create_token(session, "story-admin", Role.ADMIN, self.clock.now())
        db.dispose()
        server_url = f"http://127.0.0.1:{port}"
        settings = Settings(
            home=home,
            port=port,
            enrollment_token=SecretStr(ENROLLMENT_TOKEN),
            database_url=db_url,
            mirrors=(f"{server_url}/repository", *(m.url for m in self.mirrors)),
            kdf_log2n=self.settings.kdf_log2n,
        )
        app = create_app(settings, passphrases=self.passphrases, clock=self.clock)
        self.server = ServerThread(app, "127.0.0.1", port).start()
        self.server_url = self.server.url
        for rule in self.rules:
            self.api("POST", "/api/policies", rule.to_json())
        self.api("POST", "/api/releases/sync")

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the management API as the story's admin; RuntimeError on an error status."""
        return call_api(self.server_url, self.api_token, method, path, body)

    def stop_server(self) -> None:
        """The maker's server goes dark (for good)."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def shipped_root(self) -> bytes:
        """The image repository root every phone ships with (version 1)."""
        return self.maker.layout.metadata_file("root", 1).read_bytes()

    @property
    def director_root(self) -> bytes:
        """The director root every phone ships with."""
        return director_root_path(self.maker.layout.home).read_bytes()

    def close(self) -> None:
        """Stop the server and the mirrors."""
        self.stop_server()
        for mirror in self.mirrors:
            mirror.host.stop()
