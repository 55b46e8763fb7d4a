"""The client's version, in a module of its own: the package's other modules name it without
importing the package's `__init__`, which imports them."""

__version__ = "0.1.0"
