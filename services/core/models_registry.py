"""Imports every table module so `SQLModel.metadata` knows the whole schema."""

from services.core.catalog import models as catalog_models

__all__ = ["catalog_models"]
