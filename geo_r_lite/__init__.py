"""geo-r-lite: Chain-of-Region geolocalization with GRPO on one GPU (a light Geo-R reproduction).

Importing the package is cheap on purpose: it pulls in no torch, transformers, TRL or Unsloth.
Heavy modules (``model``, ``training``, ``evaluation``) import them lazily, inside functions.
"""

__version__ = "0.1.0"
