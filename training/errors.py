"""The errors that mean "the input is wrong" (a recipe, a data set, a model name, a server address).

Each message names the problem and how to fix it; the CLI prints them without a traceback. They live
in this light module so that the CLI can know them without importing torch or MLflow.
"""


class RecipeError(ValueError):
    """A recipe file or override is invalid; the message names the file and the bad field."""


class RecipeTaxonomyError(ValueError):
    """The recipe names a head that the taxonomy does not have."""


class BaseModelError(ValueError):
    """The base model named in a recipe cannot be found; the message says how to provide it."""


class TrackingServerError(RuntimeError):
    """The MLflow tracking server cannot be reached; the message names the URI."""


class TrainingDataError(ValueError):
    """The data set cannot train this model; the message names the split, head or label."""


class ModelLoadError(ValueError):
    """A model source cannot be loaded; the message names the source and what is missing."""


class EvaluationError(ValueError):
    """The posts cannot be scored with this model; the message says why."""


class RegistryError(ValueError):
    """A registry operation (compare, promote) cannot be done; the message says why."""


USER_ERRORS: tuple[type[Exception], ...] = (
    RecipeError,
    RecipeTaxonomyError,
    BaseModelError,
    TrackingServerError,
    TrainingDataError,
    ModelLoadError,
    EvaluationError,
    RegistryError,
)
