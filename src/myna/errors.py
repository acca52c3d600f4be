"""Errors a user can act on. Every public entry point raises a subclass of `MynaError`."""


class MynaError(Exception):
    """Base class: the message says what was wrong and what to do about it."""


class InputError(MynaError, ValueError):
    """The caller's input (text, option, file) is unusable as given."""


class UnsupportedLanguageError(InputError):
    """A language code myna does not handle."""


class Cancelled(MynaError):
    """Synthesis was stopped on request (client gone, deadline passed) before it finished."""


class ModelsError(MynaError):
    """Released model files could not be fetched, stored or checked (`myna models`)."""


class NetworkError(ModelsError):
    """A download source could not be reached or refused the request."""


class IntegrityError(ModelsError):
    """Downloaded or stored bytes do not match the hash they must have."""


class StorageError(ModelsError):
    """The model folder cannot be written: disk full, permission denied, read-only."""


class ServerFault(MynaError):
    """A fault on the server's side (storage, cache, model files), not in the caller's input.

    A service answers it with a 5xx status and the stable `code`, never as a bad request.
    """

    status = 500
    code = "server_error"
