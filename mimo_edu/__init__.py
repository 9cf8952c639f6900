"""mimo-edu: build, train and prompt a pixel-grounded medical vision-language model (MIMO)."""

from mimo_edu.errors import MimoError

__version__ = "0.1.0"
__all__ = ["MimoError", "__version__"]
