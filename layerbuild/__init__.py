"""Package, check and publish AWS Lambda layers from declared recipes."""

__version__ = "0.1.0"
