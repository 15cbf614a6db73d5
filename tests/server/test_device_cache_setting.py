"""PATCHLINE_DEVICE_CACHE_SIZE bounds both per-device caches of a server process."""

from __future__ import annotations

from patchline.director.identity import create_director
from patchline.repository import Repository
from patchline.repository.passphrases import PassphraseSource
from patchline.server.app import build_runtime
from patchline.settings import Settings
from tests.conftest import PASSPHRASE


def test_the_device_cache_size_setting_bounds_the_device_and_answer_caches(
    repo: Repository, database_url: str
) -> None:
    create_director(repo)
    env = {"PATCHLINE_DEVICE_CACHE_SIZE": "1234", "PATCHLINE_DATABASE_URL": database_url}
    settings = Settings.from_env(env).model_copy(update={"home": repo.layout.home})
    passphrases = PassphraseSource({"PATCHLINE_PASSPHRASE": PASSPHRASE}, interactive=False)
    runtime = build_runtime(settings, passphrases=passphrases)
    try:
        assert runtime.devices.capacity == 1234
        assert runtime.director.answer_cache_capacity == 1234
    finally:
        runtime.db.dispose()
