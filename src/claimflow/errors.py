"""The one exception tree of claimflow.

Every error a user can meet derives from :class:`ClaimflowError`; each message says what went wrong
and what to do about it.
"""

from __future__ import annotations


class ClaimflowError(Exception):
    """Root of every error raised by claimflow."""


# --- input -------------------------------------------------------------------------------------


class InputError(ClaimflowError, ValueError):
    """The claim, the evidence or an input file cannot be used as given."""


class EmptyClaimError(InputError):
    """The claim is empty or only whitespace."""


class ClaimTooLongError(InputError):
    """The claim is longer than the configured limit or the model's context."""


class InputEncodingError(InputError):
    """An input file is not valid text in the expected encoding."""


class ContextLengthError(InputError):
    """A rendered prompt does not fit the model's context window."""


# --- configuration -----------------------------------------------------------------------------


class ConfigError(ClaimflowError, ValueError):
    """A configuration file or object is unreadable or invalid."""


class GraphBuildError(ConfigError):
    """The pipeline graph cannot be wired from the configuration."""


# --- prompts -----------------------------------------------------------------------------------


class TemplateError(ClaimflowError, ValueError):
    """A prompt template is malformed, unknown, or fails to render."""


class TemplateNotFoundError(TemplateError, KeyError):
    """No template with the requested id (and version) is registered."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class LeakageError(TemplateError):
    """A template references a gold-label field where gold labels are not allowed."""


# --- models ------------------------------------------------------------------------------------


class ModelError(ClaimflowError):
    """A model cannot be found, verified or loaded."""


class ModelNotFoundError(ModelError, LookupError):
    """The model name is unknown, or its files are not installed."""


class ModelIntegrityError(ModelError):
    """A model file does not match its pinned sha256."""


# --- backends ----------------------------------------------------------------------------------


class BackendError(ClaimflowError):
    """An inference backend failed."""


class BackendUnavailableError(BackendError):
    """The backend (a server, an optional engine) cannot be reached or imported."""


class BackendTimeoutError(BackendError):
    """The backend did not answer in time (after retries)."""


class CapabilityError(BackendError):
    """The backend cannot do what was asked (e.g. log-probabilities)."""


class ParseError(ClaimflowError):
    """Model output could not be parsed; ``raw`` keeps the output as the model wrote it."""

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw
