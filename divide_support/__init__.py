"""divide-support: the service behind municipal smartphone classes and digital-divide support."""

__version__ = "0.1.0"
