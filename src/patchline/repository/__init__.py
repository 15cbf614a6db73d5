"""The signed update repository (TUF): keys, roles, releases, rotation, status.

The public surface::

    init_repository(home, config)          create keys and the first signed state
    Repository.open(home)                  open an existing one
    add_model / add_release / rotate_key / refresh / repository_status
"""

from patchline.repository.config import Expiries, RepositoryConfig
from patchline.repository.init import init_repository
from patchline.repository.models import add_model
from patchline.repository.publisher import Repository
from patchline.repository.refresh import refresh
from patchline.repository.releases import PublishedRelease, ReleaseRequest, add_release, releases_of
from patchline.repository.rotation import rotate_key
from patchline.repository.status import repository_status

__all__ = [
    "Expiries",
    "PublishedRelease",
    "ReleaseRequest",
    "Repository",
    "RepositoryConfig",
    "add_model",
    "add_release",
    "init_repository",
    "refresh",
    "releases_of",
    "repository_status",
    "rotate_key",
]
