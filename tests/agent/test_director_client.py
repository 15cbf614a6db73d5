"""The director's answer is trusted only when signed, for this device, and fresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root, TargetFile

from patchline.agent.director_client import verified_decision
from patchline.errors import DirectorRefusedError
from patchline.wire.device_api import CheckInAnswer
from patchline.wire.director import Action, sign_decision

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TARGET = TargetFile(65536, {"sha256": "ab" * 32}, "alpha/2.0/alpha-2.0.img")


@pytest.fixture
def signer() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


@pytest.fixture
def director_root(signer: CryptoSigner) -> bytes:
    root = Root(expires=NOW + timedelta(days=365))
    root.add_key(signer.public_key, "targets")
    return Metadata(root).to_bytes()


def answer(signer: CryptoSigner, device: str = "dev-1", **changes: object) -> CheckInAnswer:
    values: dict[str, object] = {
        "device_id": device,
        "action": Action.INSTALL,
        "reasons": ["security updates allowed until 2026-12-31"],
        "version": 3,
        "expires": NOW + timedelta(hours=1),
        "target": TARGET,
    }
    values.update(changes)
    signed = sign_decision(signer, **values)  # type: ignore[arg-type]
    return CheckInAnswer(director=signed.to_dict(), mirrors=[], poll_after_seconds=3600)


def test_a_signed_answer_for_this_device_gives_its_decision(
    signer: CryptoSigner, director_root: bytes
) -> None:
    decision = verified_decision(
        answer(signer), director_root, device_id="dev-1", now=NOW, last_version=2
    )
    assert decision.action is Action.INSTALL
    assert decision.target is not None
    assert decision.target.path == TARGET.path
    assert decision.version == 3


def test_an_answer_meant_for_another_device_is_refused(
    signer: CryptoSigner, director_root: bytes
) -> None:
    with pytest.raises(DirectorRefusedError, match="names device 'dev-2', not this device"):
        verified_decision(
            answer(signer, "dev-2"), director_root, device_id="dev-1", now=NOW, last_version=0
        )


def test_an_expired_answer_is_refused_with_the_device_clock(
    signer: CryptoSigner, director_root: bytes
) -> None:
    old = answer(signer, expires=NOW - timedelta(minutes=5))
    with pytest.raises(DirectorRefusedError, match=r"expired at .*\(device clock 2026-11-25 12:00"):
        verified_decision(old, director_root, device_id="dev-1", now=NOW, last_version=0)


def test_an_unsigned_answer_is_refused(signer: CryptoSigner, director_root: bytes) -> None:
    unsigned = answer(signer)
    unsigned.director["signatures"] = []
    with pytest.raises(DirectorRefusedError, match="not signed by the director's key"):
        verified_decision(unsigned, director_root, device_id="dev-1", now=NOW, last_version=0)


def test_an_answer_signed_by_another_key_is_refused(director_root: bytes) -> None:
    impostor = CryptoSigner.generate_ed25519()
    with pytest.raises(DirectorRefusedError, match="not signed by the director's key"):
        verified_decision(
            answer(impostor), director_root, device_id="dev-1", now=NOW, last_version=0
        )


def test_an_answer_older_than_one_already_seen_is_refused(
    signer: CryptoSigner, director_root: bytes
) -> None:
    with pytest.raises(DirectorRefusedError, match="older than 4"):
        verified_decision(answer(signer), director_root, device_id="dev-1", now=NOW, last_version=4)
