"""One exception family for every input the course refuses.

Each message names the input, says what is wrong with it and how to fix it.
"""


class MimoError(ValueError):
    """Base class: bad input that the user can fix."""


class DataError(MimoError):
    """A sample, annotation file or dataset folder is malformed or missing."""


class ImageError(MimoError):
    """An image cannot be read or is not usable by the model."""


class PromptError(MimoError):
    """A visual prompt or question is invalid for the image or the model."""


class CheckpointError(MimoError):
    """A checkpoint is missing, truncated, from another preset or incomplete."""
