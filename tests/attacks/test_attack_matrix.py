"""Every TUF and Uptane attack, replayed against a real agent by a hostile mirror or a
hostile server on 127.0.0.1: each is refused with the reason that names it, and the
device keeps running a good build (the one it had, or the genuine update from an
honest source).

The mirror attacks serve a copy of the genuine repository, altered as the attacker
can: bytes changed, files swapped between versions or models, expired files kept,
endless or trickled bodies, and -- with the timestamp and snapshot keys stolen from the
online signer, but not the targets or model keys -- new snapshot and timestamp
metadata re-signed over forged or older roles. The server attacks answer the check-in
with a director answer signed by the genuine director key but meant for another
device, older than one already seen, or naming another model's image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import Metadata, MetaFile, Snapshot, TargetFile, Targets, Timestamp

from patchline.agent import Agent, DeviceDir
from patchline.agent.reports import Outbox
from patchline.agent.state import load_state, save_state
from patchline.clock import FixedClock, SystemClock
from patchline.director.identity import create_director, director_root_path, director_signer
from patchline.errors import AgentError
from patchline.repository import Repository, refresh, rotate_key
from patchline.wire.device_api import CheckInAnswer, ReportCode, ReportStatus, Slot
from patchline.wire.director import Action, OfferedImage, OfferedRelease, sign_decision
from patchline.wire.paths import consistent_name
from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import snapshot_tree
from tests.agent.hosts import RangeHost
from tests.attacks.hostile_server import HostileDirector
from tests.conftest import image_bytes, publish

hosts = agent_fixtures.hosts
make_device = agent_fixtures.make_device

EVIL = b"\x7fELF attacker payload " * 4096


@dataclass
class World:
    """The maker's repository (alpha 1.0 and 2.0 published), and how to start hostile
    hosts and devices against it."""

    repo: Repository
    clock: FixedClock
    tmp_path: Path
    start_host: Callable[..., RangeHost]
    new_device: Callable[..., DeviceDir]
    before: Path  # the public tree as it was with 1.0 only
    directors: list[HostileDirector] = field(default_factory=list)

    def copy(self, name: str) -> Path:
        """The genuine public tree as it is now, copied for an attacker to alter."""
        return snapshot_tree(self.repo, self.tmp_path / name)

    def stolen(self, role: str) -> Signer:
        """The private key of a top-level ``role``, as a thief of the signer has it."""
        root = self.repo.state().root.signed
        return self.repo.keyring.signer(root.get_key(root.roles[role].keyids[0]))

    def honest_device(self, hostile: RangeHost, build: str = "1.0") -> DeviceDir:
        """A device whose only source is ``hostile``."""
        return self.new_device(build=build, mirrors=[hostile.url])

    def hostile_director(self, answer: CheckInAnswer | bytes) -> HostileDirector:
        raw = answer if isinstance(answer, bytes) else msgspec.json.encode(answer)
        started = HostileDirector(raw)
        self.directors.append(started)
        return started


@dataclass(frozen=True)
class Expect:
    """How an attack must end."""

    reason: str  # words the refusal must contain
    code: ReportCode  # the code reported to the maker
    build: str = "1.0"  # the build the device runs afterwards
    #: Where the refusal is seen: "refused" (no update installed; the error names it) or
    #: "attempt" (an honest source then delivered; the refused attempt names it).
    seen: str = "refused"


@dataclass(frozen=True)
class Scenario:
    device: DeviceDir
    expect: Expect
    hostile: RangeHost | None = None


# --- metadata an attacker writes ----------------------------------------------------


def read_meta(tree: Path, name: str) -> Metadata[Any]:
    return Metadata.from_bytes((tree / "metadata" / name).read_bytes())


def current_name(tree: Path, role: str) -> str:
    """The file name of the newest version of ``role`` the snapshot names."""
    snapshot = read_meta(tree, current_snapshot(tree))
    return f"{snapshot.signed.meta[f'{role}.json'].version}.{role}.json"


def current_snapshot(tree: Path) -> str:
    timestamp = read_meta(tree, "timestamp.json")
    return f"{timestamp.signed.snapshot_meta.version}.snapshot.json"


def write_signed(tree: Path, name: str, md: Metadata[Any], *signers: Signer) -> bytes:
    md.signatures.clear()
    for signer in signers:
        md.sign(signer, append=True)
    data = md.to_bytes()
    (tree / "metadata" / name).write_bytes(data)
    return data


def meta_file(old: MetaFile, version: int, data: bytes) -> MetaFile:
    """A MetaFile in the genuine one's form (with length and hash only when it had them)."""
    if old.hashes is None:
        return MetaFile(version)
    return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})


def resign_online(world: World, tree: Path, roles: dict[str, tuple[int, bytes]]) -> None:
    """With the stolen snapshot and timestamp keys: a new snapshot naming ``roles``
    (name: version, bytes) and a new timestamp naming that snapshot."""
    snapshot: Metadata[Snapshot] = read_meta(tree, current_snapshot(tree))
    for role, (version, data) in roles.items():
        key = f"{role}.json"
        snapshot.signed.meta[key] = meta_file(snapshot.signed.meta[key], version, data)
    snapshot.signed.version += 1
    name = f"{snapshot.signed.version}.snapshot.json"
    data = write_signed(tree, name, snapshot, world.stolen("snapshot"))
    timestamp: Metadata[Timestamp] = read_meta(tree, "timestamp.json")
    timestamp.signed.snapshot_meta = meta_file(
        timestamp.signed.snapshot_meta, snapshot.signed.version, data
    )
    timestamp.signed.version += 1
    write_signed(tree, "timestamp.json", timestamp, world.stolen("timestamp"))


def forged_release(tree: Path, genuine: TargetFile, build: str) -> TargetFile:
    """The attacker's image, described as ``genuine``'s release renamed ``build``, and
    written where a consistent-snapshot client would fetch it."""
    custom = dict(genuine.custom)
    custom["build"] = build
    path = f"alpha/{build}/alpha-{build}.img"
    sha = hashlib.sha256(EVIL).hexdigest()
    target = TargetFile(len(EVIL), {"sha256": sha}, path, {"custom": custom})
    stored = tree / "targets" / consistent_name(path, sha)
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(EVIL)
    return target


# --- the attacks --------------------------------------------------------------------


def arbitrary_software_image(world: World) -> Scenario:
    """The image bytes are changed; the signed metadata is left alone."""
    hostile = world.start_host(world.repo.layout.public_dir, tamper=True)
    expect = Expect("is not the signed", ReportCode.HASH_MISMATCH)
    return Scenario(world.honest_device(hostile), expect, hostile)


def arbitrary_software_metadata(world: World) -> Scenario:
    """A new build is added to the model's role and the role re-signed with the
    attacker's own key (no stolen key at all)."""
    tree = world.copy("forged")
    name = current_name(tree, "alpha")
    role: Metadata[Targets] = read_meta(tree, name)
    genuine = role.signed.targets["alpha/2.0/alpha-2.0.img"]
    role.signed.targets["alpha/9.0/alpha-9.0.img"] = forged_release(tree, genuine, "9.0")
    write_signed(tree, name, role, CryptoSigner.generate_ed25519())
    hostile = world.start_host(tree)
    expect = Expect("metadata", ReportCode.METADATA_ERROR)
    return Scenario(world.honest_device(hostile), expect, hostile)


def stolen_online_keys_arbitrary_software(world: World) -> Scenario:
    """With the timestamp and snapshot keys, a new version of the model's role listing
    the attacker's image, signed with the keys the thief holds, is made current."""
    tree = world.copy("stolen-keys")
    name = current_name(tree, "alpha")
    role: Metadata[Targets] = read_meta(tree, name)
    genuine = role.signed.targets["alpha/2.0/alpha-2.0.img"]
    role.signed.targets["alpha/9.0/alpha-9.0.img"] = forged_release(tree, genuine, "9.0")
    role.signed.version += 1
    forged = f"{role.signed.version}.alpha.json"
    data = write_signed(tree, forged, role, world.stolen("snapshot"), world.stolen("timestamp"))
    resign_online(world, tree, {"alpha": (role.signed.version, data)})
    hostile = world.start_host(tree)
    expect = Expect("metadata is not signed by the trusted keys", ReportCode.METADATA_ERROR)
    return Scenario(world.honest_device(hostile), expect, hostile)


def stolen_online_keys_rollback(world: World) -> Scenario:
    """With the timestamp and snapshot keys, a new snapshot names an older version of
    the model's role (hiding 2.0) to a device that trusts the newer one."""
    tree = world.copy("stolen-rollback")
    device = world.new_device(build="2.0", mirrors=[world.start_host(tree).url])
    assert Agent(device, clock=SystemClock()).update().status == "up-to-date"
    older = tree / "metadata" / "2.alpha.json"
    resign_online(world, tree, {"alpha": (2, older.read_bytes())})
    expect = Expect(
        "metadata is older than what this device already trusts",
        ReportCode.METADATA_ERROR,
        build="2.0",
    )
    return Scenario(device, expect)


def stolen_timestamp_key_freeze(world: World) -> Scenario:
    """With the timestamp key, fresh timestamps keep naming a snapshot that has
    expired: the freeze lasts at most until the snapshot's expiry."""
    now = world.clock.now()
    world.clock.set(now - timedelta(days=8))  # the snapshot signed then expired a day ago
    refresh(world.repo, force_online=True)
    tree = world.copy("frozen")
    world.clock.set(now)
    timestamp: Metadata[Timestamp] = read_meta(tree, "timestamp.json")
    timestamp.signed.expires = now + timedelta(days=1)
    timestamp.signed.version += 1
    write_signed(tree, "timestamp.json", timestamp, world.stolen("timestamp"))
    hostile = world.start_host(tree)
    expect = Expect("metadata expired", ReportCode.METADATA_ERROR)
    return Scenario(world.honest_device(hostile), expect, hostile)


def rollback(world: World) -> Scenario:
    """A mirror kept from before 2.0 is offered to a device that has seen 2.0."""
    honest = world.start_host(world.repo.layout.public_dir)
    device = world.new_device(build="2.0", mirrors=[honest.url])
    assert Agent(device, clock=SystemClock()).update().status == "up-to-date"
    hostile = world.start_host(world.before)
    _use_only(device, hostile)
    expect = Expect(
        "metadata is older than what this device already trusts",
        ReportCode.METADATA_ERROR,
        build="2.0",
    )
    return Scenario(device, expect, hostile)


def freeze(world: World) -> Scenario:
    """A mirror keeps serving metadata whose timestamp has expired."""
    now = world.clock.now()
    world.clock.set(now - timedelta(days=4))
    refresh(world.repo, force_online=True)
    stale = world.copy("expired")
    world.clock.set(now)
    refresh(world.repo, force_online=True)
    hostile = world.start_host(stale)
    expect = Expect("metadata expired 3 days ago", ReportCode.METADATA_ERROR)
    return Scenario(world.honest_device(hostile), expect, hostile)


def endless_target(world: World) -> Scenario:
    hostile = world.start_host(world.repo.layout.public_dir, endless=10 * 1024 * 1024)
    expect = Expect("(endless data)", ReportCode.DOWNLOAD_ERROR)
    return Scenario(world.honest_device(hostile), expect, hostile)


def endless_metadata(world: World) -> Scenario:
    hostile = world.start_host(world.repo.layout.public_dir, endless_metadata=True)
    expect = Expect("metadata longer than allowed", ReportCode.METADATA_ERROR)
    return Scenario(world.honest_device(hostile), expect, hostile)


def slow_target(world: World) -> Scenario:
    hostile = world.start_host(world.repo.layout.public_dir, trickle=True)
    expect = Expect("(slow retrieval)", ReportCode.DOWNLOAD_ERROR)
    return Scenario(world.honest_device(hostile), expect, hostile)


def slow_metadata(world: World) -> Scenario:
    hostile = world.start_host(world.repo.layout.public_dir, trickle_metadata=True)
    expect = Expect("metadata at", ReportCode.DOWNLOAD_ERROR)
    return Scenario(world.honest_device(hostile), expect, hostile)


def mix_and_match(world: World) -> Scenario:
    """The current snapshot and timestamp, with an older version of the model's role
    served under the current version's name."""
    tree = world.copy("mixed")
    name = current_name(tree, "alpha")
    (tree / "metadata" / name).write_bytes((tree / "metadata" / "2.alpha.json").read_bytes())
    hostile = world.start_host(tree)
    expect = Expect("metadata", ReportCode.METADATA_ERROR)
    return Scenario(world.honest_device(hostile), expect, hostile)


def wrong_model_metadata(world: World) -> Scenario:
    """Another model's role (validly signed by that model's key) served as this one's."""
    publish(world.repo, "beta", "5.0")
    tree = world.copy("wrong-model")
    alpha, beta = current_name(tree, "alpha"), current_name(tree, "beta")
    (tree / "metadata" / alpha).write_bytes((tree / "metadata" / beta).read_bytes())
    hostile = world.start_host(tree)
    expect = Expect("metadata", ReportCode.METADATA_ERROR)
    return Scenario(world.honest_device(hostile), expect, hostile)


def wrong_model_image(world: World) -> Scenario:
    """Another model's genuine image served in place of this model's."""
    publish(world.repo, "beta", "2.0")
    tree = world.copy("wrong-image")
    beta = next((tree / "targets" / "beta" / "2.0").glob("*.beta-2.0.img")).read_bytes()
    for alpha in (tree / "targets" / "alpha" / "2.0").iterdir():  # the image and its delta
        alpha.write_bytes(beta)
    hostile = world.start_host(tree)
    expect = Expect("is not the signed", ReportCode.HASH_MISMATCH)
    return Scenario(world.honest_device(hostile), expect, hostile)


# --- director answers ------------------------------------------------------------


def director_device(
    world: World, answer_for: Callable[[str], CheckInAnswer | bytes], build: str = "1.0"
) -> DeviceDir:
    """A device enrolled as ``dev-a`` whose server is hostile and answers with
    ``answer_for("dev-a")``, and whose mirror is honest."""
    honest = world.start_host(world.repo.layout.public_dir)
    hostile = world.hostile_director(answer_for("dev-a"))
    device = world.new_device(
        build=build,
        device_id="dev-a",
        credential="dev-a.secret",
        server_url=hostile.url,
        mirrors=[honest.url],
    )
    device.director_root.parent.mkdir(parents=True, exist_ok=True)
    device.director_root.write_bytes(director_root_path(world.repo.layout.home).read_bytes())
    return device


def genuine_answer(world: World, device_id: str, **changes: object) -> CheckInAnswer:
    """A director answer signed by the genuine director key."""
    root = create_director(world.repo)
    signer = director_signer(world.repo, root)
    target = world.repo.state().model("alpha").signed.targets["alpha/2.0/alpha-2.0.img"]
    values: dict[str, object] = {
        "device_id": device_id,
        "action": Action.INSTALL,
        "reasons": ["allowed"],
        "version": 5,
        "expires": world.clock.now() + timedelta(hours=1),
        "target": target,
    }
    values.update(changes)
    signed = sign_decision(signer, **values)  # type: ignore[arg-type]
    return CheckInAnswer(director=signed.to_dict(), mirrors=[], poll_after_seconds=3600)


def replayed_from_another_device(world: World) -> Scenario:
    """dev-b's genuine answer is replayed to dev-a. The check-in is refused and the
    device goes on with the signed eligibility alone (it installs the genuine 2.0)."""
    answer = genuine_answer(world, "dev-b")
    device = director_device(world, lambda _: answer)
    expect = Expect(
        "names device 'dev-b', not this device (dev-a)",
        ReportCode.METADATA_ERROR,
        build="2.0",
        seen="attempt",
    )
    return Scenario(device, expect)


def replayed_older_answer(world: World) -> Scenario:
    """An answer older than one the device already verified is replayed."""
    answer = genuine_answer(world, "dev-a", version=3)
    device = director_device(world, lambda _: answer)
    state = load_state(device)
    save_state(device, msgspec.structs.replace(state, last_director_version=4))
    expect = Expect(
        "version 3 is older than 4, already seen (rollback)",
        ReportCode.METADATA_ERROR,
        build="2.0",
        seen="attempt",
    )
    return Scenario(device, expect)


def impostor_answer_not_canonical_json(world: World) -> Scenario:
    """An impostor server answers with this device's genuine answer plus a float, which
    no canonical-JSON signature can cover: refused as malformed, not a crash."""
    data = msgspec.json.encode(genuine_answer(world, "dev-a"))
    hostile = data.replace(b'"version":5', b'"version":5,"x":0.5', 1)
    assert hostile != data
    device = director_device(world, lambda _: hostile)
    expect = Expect(
        "director answer is malformed: not canonical JSON",
        ReportCode.METADATA_ERROR,
        build="2.0",
        seen="attempt",
    )
    return Scenario(device, expect)


def downgrade_from_the_director(world: World) -> Scenario:
    """A genuinely signed answer for this device, running 2.0, names the signed 1.0."""
    old = world.repo.state().model("alpha").signed.targets["alpha/1.0/alpha-1.0.img"]
    release = OfferedRelease(
        "1.0", "2026-01-01", "security", OfferedImage(old.path, old.length, old.hashes["sha256"])
    )
    answer = genuine_answer(world, "dev-a", target=old, release=release)
    device = director_device(world, lambda _: answer, build="2.0")
    expect = Expect(
        "build 1.0 is not newer than the running 2.0", ReportCode.DOWNGRADE, build="2.0"
    )
    return Scenario(device, expect)


def wrong_model_from_the_director(world: World) -> Scenario:
    """A genuinely signed answer for this device names another model's image."""
    publish(world.repo, "beta", "2.0")
    beta = world.repo.state().model("beta").signed.targets["beta/2.0/beta-2.0.img"]
    answer = genuine_answer(world, "dev-a", target=beta)
    device = director_device(world, lambda _: answer)
    expect = Expect("is for model beta, not this device", ReportCode.METADATA_ERROR)
    return Scenario(device, expect)


def _use_only(device: DeviceDir, hostile: RangeHost) -> None:
    device.save_config(msgspec.structs.replace(device.load_config(), mirrors=[hostile.url]))


ATTACKS: dict[str, Callable[[World], Scenario]] = {
    "arbitrary-software-image": arbitrary_software_image,
    "arbitrary-software-metadata": arbitrary_software_metadata,
    "stolen-online-keys-arbitrary-software": stolen_online_keys_arbitrary_software,
    "stolen-online-keys-rollback": stolen_online_keys_rollback,
    "stolen-timestamp-key-freeze": stolen_timestamp_key_freeze,
    "rollback": rollback,
    "freeze": freeze,
    "endless-data-target": endless_target,
    "endless-data-metadata": endless_metadata,
    "slow-retrieval-target": slow_target,
    "slow-retrieval-metadata": slow_metadata,
    "mix-and-match": mix_and_match,
    "wrong-model-metadata": wrong_model_metadata,
    "wrong-model-image": wrong_model_image,
    "wrong-model-director": wrong_model_from_the_director,
    "downgrade-from-the-director": downgrade_from_the_director,
    "director-answer-of-another-device": replayed_from_another_device,
    "director-answer-replayed-older": replayed_older_answer,
    "director-answer-not-canonical-json": impostor_answer_not_canonical_json,
}


@pytest.fixture
def world(
    repo: Repository,
    clock: FixedClock,
    tmp_path: Path,
    hosts: Callable[..., RangeHost],
    make_device: Callable[..., DeviceDir],
) -> Any:
    publish(repo, "alpha", "1.0")
    before = snapshot_tree(repo, tmp_path / "before-2.0")
    publish(repo, "alpha", "2.0", "2026-02-01")
    made = World(repo, clock, tmp_path, hosts, make_device, before)
    yield made
    for director in made.directors:
        director.stop()


@pytest.mark.parametrize("attack", list(ATTACKS.values()), ids=list(ATTACKS))
def test_the_attack_is_refused_with_its_reason_and_the_device_keeps_a_good_build(
    world: World, attack: Callable[[World], Scenario]
) -> None:
    scenario = attack(world)
    device, expect = scenario.device, scenario.expect
    agent = Agent(device, clock=SystemClock())

    if expect.seen == "refused":
        with pytest.raises(AgentError) as refused:
            agent.update()
        assert expect.reason in refused.value.message
        failed = [r for _, r in Outbox(device.outbox).pending() if r.status is ReportStatus.FAILED]
        assert failed[-1].code is expect.code
        assert expect.reason in failed[-1].detail
    else:
        result = agent.update()
        assert result.status == "installed"
        assert any(expect.reason in a.reason and a.code is expect.code for a in result.attempts), (
            result.attempts
        )

    state = load_state(device)
    assert state.running.build == expect.build
    running = device.slot_image(state.active).read_bytes()
    assert running == image_bytes(f"alpha/{expect.build}")
    assert EVIL not in running
    if expect.build == "1.0":
        assert state.active is Slot.A
        assert not device.slot_image(Slot.B).exists() or (
            device.slot_image(Slot.B).read_bytes() != EVIL
        )


def test_after_stolen_online_keys_are_rotated_the_device_updates_from_an_honest_mirror(
    world: World,
) -> None:
    """The thief's timestamp and snapshot were trusted before the forged role was
    refused, so the honest (lower) versions look like a rollback until the maker rotates
    the online keys: the device then drops what the old keys signed and updates."""
    scenario = stolen_online_keys_arbitrary_software(world)
    with pytest.raises(AgentError):
        Agent(scenario.device, clock=SystemClock()).update()
    honest = world.start_host(world.repo.layout.public_dir)
    _use_only(scenario.device, honest)
    with pytest.raises(AgentError, match="older than what this device already trusts"):
        Agent(scenario.device, clock=SystemClock()).update()

    rotate_key(world.repo, "timestamp")
    rotate_key(world.repo, "snapshot")
    result = Agent(scenario.device, clock=SystemClock()).update()

    assert result.status == "installed"
    assert result.build == "2.0"
    assert date.fromisoformat(load_state(scenario.device).running.security_patch_level) == date(
        2026, 2, 1
    )
