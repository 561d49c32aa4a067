"""venueguard: the connectivity layer for Python trading bots that must survive a failing venue."""

__version__ = "0.1.0"
