"""A declarative integration gateway: providers described in YAML, one generic engine."""

__version__ = "0.1.0"
