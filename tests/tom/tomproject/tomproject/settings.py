"""A TOM Toolkit project as `tom_setup` makes one, plus the three settings tom_calserv needs.

Its database and files live in TOM_TEST_DIR (a test's temporary directory); calserv's address is
CALSERV_URL from the environment.
"""

import os
from pathlib import Path

from tom_common.default_settings import *  # noqa: F403

BASE_DIR = Path(os.environ["TOM_TEST_DIR"])
SECRET_KEY = "tom-calserv-test-secret-key-not-for-production-use-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
TOM_NAME = "calserv test TOM"

# --- the three settings of tom_calserv (see tom_calserv/README.md)
INSTALLED_APPS = [*TOMTOOLKIT_INSTALLED_APPS, "tom_calserv"]  # noqa: F405
CALSERV_URL = os.environ["CALSERV_URL"]
DATA_PRODUCT_TYPES = {
    "photometry": ("photometry", "Photometry"),
    "fits_file": ("fits_file", "FITS File"),
    "spectroscopy": ("spectroscopy", "Spectroscopy"),
    "image_file": ("image_file", "Image File"),
    "calserv_frame": ("calserv_frame", "Frame to calibrate with calserv"),
}
# ---

SITE_ID = 1
MIDDLEWARE = TOMTOOLKIT_MIDDLEWARE  # noqa: F405
ROOT_URLCONF = "tomproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
CRISPY_TEMPLATE_PACK = "bootstrap5"
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE_DIR / "db.sqlite3")}
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGIN_URL = "/accounts/login/"
TIME_ZONE = "UTC"
USE_TZ = True
STATIC_URL = "/static/"
MEDIA_ROOT = str(BASE_DIR / "data")
MEDIA_URL = "/data/"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
TARGET_TYPE = "SIDEREAL"
MATCH_MANAGERS = {}
FACILITIES = {}
DATA_PROCESSORS = {
    "photometry": "tom_dataproducts.processors.photometry_processor.PhotometryProcessor",
    "spectroscopy": "tom_dataproducts.processors.spectroscopy_processor.SpectroscopyProcessor",
}
TOM_FACILITY_CLASSES = []
EXTRA_FIELDS = []
GENERAL_SEARCH_FUNCTIONS = {}
SELECTION_EXTRA_FIELDS = []
AUTH_STRATEGY = "READ_ONLY"
OPEN_URLS = []
TARGET_PERMISSIONS_ONLY = True
TARGET_DEFAULT_PERMISSION = "PRIVATE"
TARGET_LIST_COLUMNS = ["name", "type", "observations", "saved_data"]
HOOKS = {
    "target_post_save": "tom_common.hooks.target_post_save",
    "observation_change_state": "tom_common.hooks.observation_change_state",
    "data_product_post_upload": "tom_dataproducts.hooks.data_product_post_upload",
    "data_product_post_save": "tom_dataproducts.hooks.data_product_post_save",
    "multiple_data_products_post_save": "tom_dataproducts.hooks.multiple_data_products_post_save",
}
AUTO_THUMBNAILS = False
THUMBNAIL_MAX_SIZE = (0, 0)
THUMBNAIL_DEFAULT_SIZE = (200, 200)
HINTS_ENABLED = False
HINT_LEVEL = 20
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tom_common.accounts.api_auth.TomTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
PLOTLY_THEME = "plotly_white"
SHOW_PAGINATION_INFO = True
