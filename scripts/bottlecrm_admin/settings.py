"""BottleCRM's own settings, with the demo organisation's admin screens added (see __init__)."""

from crm.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bottlecrm_admin"]  # noqa: F405
MIDDLEWARE = [*MIDDLEWARE, "bottlecrm_admin.middleware.DemoOrganisationForAdmin"]  # noqa: F405
