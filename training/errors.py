"""The errors that mean "the input is wrong" (a recipe, a data set, a model name, a server address).

Each message names the problem and how to fix it; as data.errors.UserError subclasses, the CLI prints
them without a traceback. They keep their ValueError or RuntimeError base for callers that catch those.
"""

from data.errors import UserError


class RecipeError(UserError, ValueError):
    """A recipe file or override is invalid; the message names the file and the bad field."""


class RecipeTaxonomyError(UserError, ValueError):
    """The recipe names a head that the taxonomy does not have."""


class BaseModelError(UserError, ValueError):
    """The base model named in a recipe cannot be found; the message says how to provide it."""


class TrackingServerError(UserError, RuntimeError):
    """The MLflow tracking server cannot be reached; the message names the URI."""


class TrainingDataError(UserError, ValueError):
    """The data set cannot train this model; the message names the split, head or label."""


class ModelLoadError(UserError, ValueError):
    """A model source cannot be loaded; the message names the source and what is missing."""


class EvaluationError(UserError, ValueError):
    """The posts cannot be scored with this model; the message says why."""


class RegistryError(UserError, ValueError):
    """A registry operation (compare, promote) cannot be done; the message says why."""

