"""ferrotls: TLS for Python with a Rust core."""

from . import _core

__version__ = "0.1.0"
__all__ = ["_core", "__version__"]
