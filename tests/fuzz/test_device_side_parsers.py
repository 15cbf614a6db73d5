"""Bounded fuzzing of every parser on the device that reads bytes from outside: the
delta patch reader, the offline bundle reader, the TUF metadata of a source, and the
director's answer to a check-in. Each may refuse its input, but only with the
refusal it documents (never another exception type, never a crash) and, for the delta,
leaving nothing behind."""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import urllib3
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root, TargetFile, Targets
from tuf.api.serialization import SerializationError

from patchline.agent.bundle import open_bundle
from patchline.agent.choose import Facts, plan_update
from patchline.agent.device import DeviceConfig
from patchline.agent.director_client import verified_decision
from patchline.agent.sources import Source, SourceKind
from patchline.agent.state import SlotContent
from patchline.agent.trust import refresh_source
from patchline.delta import apply_delta, build_delta
from patchline.errors import DeltaError, SourceError
from patchline.repository import Repository
from patchline.repository.bundles import add_offline_key, export_bundle
from patchline.transport import device_api_protocol as protocol
from patchline.transport.fetcher import SourceFetcher
from patchline.wire.device_api import CheckInAnswer
from patchline.wire.director import FIELD, Action, sign_decision
from tests.conftest import START, publish
from tests.fuzz.mutations import JSON_VALUES, hostile_json, mangled

BOUNDED = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- delta patches ----------------------------------------------------------------


@pytest.fixture(scope="module")
def delta(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, bytes]:
    """(source image, patch bytes, target bytes) of a small genuine delta."""
    folder = tmp_path_factory.mktemp("delta")
    rng = random.Random(17)
    old = rng.randbytes(24_000)
    new = old[:5_000] + rng.randbytes(700) + old[5_000:20_000] + old[21_000:]
    (folder / "old.img").write_bytes(old)
    (folder / "new.img").write_bytes(new)
    build_delta(folder / "old.img", folder / "new.img", folder / "patch")
    return folder / "old.img", (folder / "patch").read_bytes(), new


def test_a_mangled_delta_patch_is_a_delta_error_and_leaves_nothing(
    delta: tuple[Path, bytes, bytes], tmp_path: Path
) -> None:
    source, patch, new = delta
    expected = hashlib.sha256(new).hexdigest()

    @BOUNDED
    @given(mangled(patch))
    def run(candidate: bytes) -> None:
        out = tmp_path / "out.img"
        try:
            apply_delta(
                source,
                io.BytesIO(candidate),
                out,
                expected_sha256=expected,
                expected_length=len(new),
            )
        except DeltaError:
            assert not out.exists()
            assert not list(tmp_path.glob(".out.img.*"))
        else:
            assert out.read_bytes() == new
            out.unlink()

    run()


def one_file_changed(files: list[Path]) -> st.SearchStrategy[tuple[Path, bytes]]:
    """One of ``files`` and hostile contents for it."""
    return st.sampled_from(files).flatmap(
        lambda file: st.tuples(st.just(file), hostile_json(file.read_bytes()))
    )


# --- offline bundles ----------------------------------------------------------------


@pytest.fixture
def bundle(repo: Repository, tmp_path: Path) -> tuple[Path, bytes]:
    """An exported bundle for alpha and the root a device ships with."""
    add_offline_key(repo)
    publish(repo, "alpha", "1.0")
    publish(repo, "alpha", "1.1", "2026-02-01")
    card = tmp_path / "card"
    export_bundle(repo, "alpha", card)
    return card, repo.layout.metadata_file("root", 1).read_bytes()


def test_a_mangled_bundle_file_is_refused_as_a_source_error(bundle: tuple[Path, bytes]) -> None:
    card, shipped = bundle
    files = sorted(p for p in (card / "metadata").iterdir() if p.suffix == ".json")
    source = Source(SourceKind.BUNDLE, str(card))
    now = START + timedelta(days=1)

    @BOUNDED
    @given(
        st.sampled_from(files).flatmap(
            lambda f: st.tuples(st.just(f), hostile_json(f.read_bytes()))
        )
    )
    def run(case: tuple[Path, bytes]) -> None:
        file, candidate = case
        genuine = file.read_bytes()
        file.write_bytes(candidate)
        try:
            opened = open_bundle(source, shipped, 1, "alpha", now)
            assert opened.targets  # it verified: the change did not matter to the signatures
        except SourceError:
            pass
        finally:
            file.write_bytes(genuine)

    run()


# --- TUF metadata of a source ---------------------------------------------------------


def test_mangled_repository_metadata_is_refused_as_a_source_error(
    repo: Repository, tmp_path: Path
) -> None:
    publish(repo, "alpha", "1.0")
    publish(repo, "alpha", "1.1", "2026-02-01")
    folder = tmp_path / "copy"
    shutil.copytree(repo.layout.public_dir, folder)
    files = sorted((folder / "metadata").iterdir())
    shipped = repo.layout.metadata_file("root", 1).read_bytes()
    source = Source(SourceKind.BUNDLE, str(folder))
    fetcher = SourceFetcher(urllib3.PoolManager()).on_card(folder)
    facts = Facts(
        config=DeviceConfig(model="alpha"),
        running=SlotContent(build="1.0", sha256="0" * 64, security_patch_level="2026-01-01"),
        today=START.date(),
        refused_builds=frozenset(),
    )

    @BOUNDED
    @given(
        st.sampled_from(files).flatmap(
            lambda f: st.tuples(st.just(f), hostile_json(f.read_bytes()))
        )
    )
    def run(case: tuple[Path, bytes]) -> None:
        file, candidate = case
        genuine = file.read_bytes()
        file.write_bytes(candidate)
        try:
            with tempfile.TemporaryDirectory() as device:
                verified = refresh_source(Path(device), source, fetcher, shipped, START)
                plan_update(verified, facts, None)
        except SourceError:
            pass
        finally:
            file.write_bytes(genuine)

    run()


# --- the director's answer --------------------------------------------------------------

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def director() -> tuple[CryptoSigner, bytes]:
    signer = CryptoSigner.generate_ed25519()
    root = Root(expires=NOW + timedelta(days=365))
    root.add_key(signer.public_key, "targets")
    return signer, Metadata(root).to_bytes()


def genuine_answer(signer: CryptoSigner) -> Metadata[Targets]:
    return sign_decision(
        signer,
        device_id="dev-1",
        action=Action.INSTALL,
        reasons=["allowed"],
        version=3,
        expires=NOW + timedelta(hours=1),
        target=TargetFile(65536, {"sha256": "ab" * 32}, "alpha/2.0/alpha-2.0.img"),
    )


def answer_of(md: Metadata[Targets]) -> CheckInAnswer:
    return CheckInAnswer(director=md.to_dict(), mirrors=[], poll_after_seconds=3600)


def decide(data: bytes, root: bytes) -> None:
    """Decode and verify a check-in answer as the agent does."""
    answer = protocol.answer_of(protocol.CHECK_IN, 200, data, CheckInAnswer)
    verified_decision(answer, root, device_id="dev-1", now=NOW, last_version=2)


def test_a_mangled_director_answer_is_refused_as_a_source_error(
    director: tuple[CryptoSigner, bytes],
) -> None:
    signer, root = director
    answer = CheckInAnswer(
        director=genuine_answer(signer).to_dict(), mirrors=[], poll_after_seconds=3600
    )
    data = msgspec.json.encode(answer)

    @BOUNDED
    @given(hostile_json(data))
    def run(candidate: bytes) -> None:
        with contextlib.suppress(SourceError):
            decide(candidate, root)

    run()


def _signed_paths(md: Metadata[Targets]) -> Iterator[tuple[str, ...]]:
    yield ("custom", FIELD)
    for key in md.signed.unrecognized_fields[FIELD]:
        yield ("custom", FIELD, key)
    for path in md.signed.targets:
        yield ("targets", path)
        yield ("targets", path, "custom")


def test_a_signed_director_answer_with_any_decision_body_never_crashes_the_agent(
    director: tuple[CryptoSigner, bytes],
) -> None:
    """What a stolen director key could sign: any JSON in the decision and its target."""
    signer, root = director
    paths = list(_signed_paths(genuine_answer(signer)))

    @BOUNDED
    @given(st.sampled_from(paths), JSON_VALUES)
    def run(path: tuple[str, ...], value: Any) -> None:
        md = genuine_answer(signer)
        signed = md.signed
        if path[0] == "custom":
            if len(path) == 2:
                signed.unrecognized_fields[FIELD] = value
            else:
                signed.unrecognized_fields[FIELD][path[2]] = value
        else:
            target = signed.targets[path[1]]
            if len(path) == 2:
                signed.targets[path[1]] = TargetFile(
                    target.length, target.hashes, target.path, {"custom": value}
                )
            else:
                target.unrecognized_fields["custom"] = value
        md.signatures.clear()
        try:
            md.sign(signer)
        except SerializationError:
            reject()  # not canonical JSON (a float, say): nobody can sign it
        data = msgspec.json.encode(
            CheckInAnswer(director=md.to_dict(), mirrors=[], poll_after_seconds=3600)
        )
        with contextlib.suppress(SourceError):
            decide(data, root)

    run()
