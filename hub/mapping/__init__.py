"""Declarative mappings: vendor records -> canonical entities (files in ``mappings/``)."""

from hub.mapping.executor import MappingResult, apply_mapping
from hub.mapping.loader import MappingSpec, load_mapping

__all__ = ["MappingResult", "MappingSpec", "apply_mapping", "load_mapping"]
