"""Imports every table module so `SQLModel.metadata` knows the whole schema."""

from services.core.audit import models as audit_models
from services.core.auth import models as auth_models
from services.core.catalog import models as catalog_models
from services.core.files import models as file_models
from services.core.instances import models as instance_models
from services.core.monitors import models as monitor_models
from services.core.notifications import models as notification_models
from services.core.people import models as people_models
from services.core.reports import models as report_models
from services.core.reviews import models as review_models
from services.core.satkers import models as satker_models
from services.core.sipp import models as sipp_models
from services.core.webhooks_in import models as hook_models
from services.core.webhooks_out import models as webhook_models

__all__ = [
    "audit_models",
    "auth_models",
    "catalog_models",
    "file_models",
    "hook_models",
    "instance_models",
    "monitor_models",
    "notification_models",
    "people_models",
    "report_models",
    "review_models",
    "satker_models",
    "sipp_models",
    "webhook_models",
]
