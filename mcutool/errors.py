"""The one exception type for errors a user can cause; the CLI prints its message and exits non-zero."""


class UserError(Exception):
    """An error caused by the user's input (bad file, unsupported op, model too large, missing tool).

    The message is a complete paragraph: what is wrong, where (file, layer, op), and what to do about it.
    """
