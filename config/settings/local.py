"""The embedded default: SQLite and the filesystem broker under var/, demo logins."""

import os

os.environ.setdefault("DEBUG", "true")

from config.settings.base import *  # noqa: E402, F403

# Static files come straight from the app's folders, with DEBUG on or off: the embedded demo runs
# its web server with DEBUG off (the app's own error pages) and never runs collectstatic.
WHITENOISE_USE_FINDERS = True
