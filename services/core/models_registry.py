"""Imports every table module so `SQLModel.metadata` knows the whole schema."""

from services.core.audit import models as audit_models
from services.core.catalog import models as catalog_models
from services.core.instances import models as instance_models
from services.core.satkers import models as satker_models

__all__ = ["audit_models", "catalog_models", "instance_models", "satker_models"]
