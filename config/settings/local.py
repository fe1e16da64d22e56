"""The embedded default: SQLite and the filesystem broker under var/, demo logins."""

import os

os.environ.setdefault("DEBUG", "true")

from config.settings.base import *  # noqa: E402, F403
