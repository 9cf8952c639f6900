"""mimo-edu: build, train and prompt a pixel-grounded medical vision-language model (MIMO)."""

from mimo_edu.errors import MimoError
from mimo_edu.shipped import use_packaged_foundations

__version__ = "0.1.0"
__all__ = ["MimoError", "__version__"]

use_packaged_foundations()  # a wheel install finds the foundations it carries
