"""Bundle fixtures: a repository with an offline key, and devices of model alpha."""

from __future__ import annotations

import pytest

from patchline.repository import Repository
from patchline.repository.bundles import add_offline_key
from tests.agent.conftest import make_device  # noqa: F401  (a fixture, shared)


@pytest.fixture
def offline_repo(repo: Repository) -> Repository:
    """The test repository (models alpha and beta) with an offline key named in root."""
    add_offline_key(repo)
    return repo


from tests.server.conftest import server  # noqa: E402, F401  (a fixture, shared)
