from datetime import UTC, datetime, timedelta

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root, TargetFile

from patchline.wire.director import (
    Action,
    DirectorAnswerError,
    agrees_with_image,
    sign_decision,
    verify_decision,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def signer() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


@pytest.fixture
def director_root(signer: CryptoSigner) -> Root:
    root = Root(expires=NOW + timedelta(days=365))
    root.add_key(signer.public_key, "targets")
    return root


def image_target() -> TargetFile:
    return TargetFile(1234, {"sha256": "ab" * 32}, "alpha/1.1/alpha-1.1.img", {"custom": {"x": 1}})


def answer(signer: CryptoSigner, device: str = "dev-1", **changes: object) -> bytes:
    values: dict[str, object] = {
        "device_id": device,
        "action": Action.INSTALL,
        "reasons": ["rule R1 allows security updates"],
        "version": 5,
        "expires": NOW + timedelta(hours=1),
        "target": image_target(),
    }
    values.update(changes)
    return sign_decision(signer, **values).to_bytes()  # type: ignore[arg-type]


def test_a_signed_answer_for_this_device_verifies(
    signer: CryptoSigner, director_root: Root
) -> None:
    decision = verify_decision(director_root, answer(signer), device_id="dev-1", now=NOW)
    assert decision.action is Action.INSTALL
    assert decision.reasons == ("rule R1 allows security updates",)
    assert decision.target is not None
    assert decision.target.custom["device_id"] == "dev-1"
    assert agrees_with_image(decision.target, image_target())


def test_an_answer_for_another_device_is_refused(signer: CryptoSigner, director_root: Root) -> None:
    with pytest.raises(DirectorAnswerError, match="names device 'dev-2'"):
        verify_decision(director_root, answer(signer, "dev-2"), device_id="dev-1", now=NOW)


def test_an_answer_signed_by_another_key_is_refused(director_root: Root) -> None:
    impostor = CryptoSigner.generate_ed25519()
    with pytest.raises(DirectorAnswerError, match="not signed"):
        verify_decision(director_root, answer(impostor), device_id="dev-1", now=NOW)


def test_expired_and_rolled_back_answers_are_refused(
    signer: CryptoSigner, director_root: Root
) -> None:
    with pytest.raises(DirectorAnswerError, match="expired"):
        verify_decision(
            director_root, answer(signer), device_id="dev-1", now=NOW + timedelta(hours=2)
        )
    with pytest.raises(DirectorAnswerError, match="rollback"):
        verify_decision(director_root, answer(signer), device_id="dev-1", now=NOW, last_version=6)


def test_a_changed_byte_breaks_the_signature(signer: CryptoSigner, director_root: Root) -> None:
    tampered = answer(signer).replace(b"1234", b"1235")
    with pytest.raises(DirectorAnswerError, match="not signed"):
        verify_decision(director_root, tampered, device_id="dev-1", now=NOW)


def test_nothing_to_do_answer(signer: CryptoSigner, director_root: Root) -> None:
    data = answer(signer, action=Action.NONE, target=None, reasons=["licence lapsed"])
    decision = verify_decision(director_root, data, device_id="dev-1", now=NOW)
    assert decision.action is Action.NONE
    assert decision.target is None
    assert decision.reasons == ("licence lapsed",)


def test_director_and_image_must_agree_exactly() -> None:
    image = image_target()
    assert not agrees_with_image(TargetFile(1235, dict(image.hashes), image.path), image)
    assert not agrees_with_image(TargetFile(1234, {"sha256": "cd" * 32}, image.path), image)
    assert not agrees_with_image(TargetFile(1234, dict(image.hashes), "alpha/1.2/x.img"), image)


@pytest.mark.parametrize("custom", [None, [], "dev-1", 7])
def test_a_signed_target_whose_custom_fields_are_not_an_object_is_refused(
    signer: CryptoSigner, director_root: Root, custom: object
) -> None:
    md = Metadata.from_bytes(answer(signer))
    (target,) = md.signed.targets.values()
    target.unrecognized_fields["custom"] = custom
    md.sign(signer)
    with pytest.raises(DirectorAnswerError, match="carries no custom fields"):
        verify_decision(director_root, md.to_bytes(), device_id="dev-1", now=NOW)


def test_an_answer_that_is_not_canonical_json_is_refused_as_malformed(
    signer: CryptoSigner, director_root: Root
) -> None:
    data = answer(signer).replace(b'"version":5', b'"version":5,"x":0.5')
    with pytest.raises(DirectorAnswerError, match="not canonical JSON"):
        verify_decision(director_root, data, device_id="dev-1", now=NOW)
