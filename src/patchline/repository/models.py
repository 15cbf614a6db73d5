"""Device models: one delegated targets role (and key) per model."""

from __future__ import annotations

from patchline.repository.publisher import Repository


def add_model(repo: Repository, model: str) -> str:
    """Add a model role signing ``MODEL/*/*``; return its key id.

    Raises ModelExistsError for a model that exists, InvalidReleaseInfo for a bad name.
    """
    with repo.transaction() as tx:
        tx.require_signers(["targets", "snapshot", "timestamp"])
        key = tx.add_model(model)
        try:
            tx.commit()
        except BaseException:
            repo.keyring.retire(key.keyid)
            raise
        return key.keyid
