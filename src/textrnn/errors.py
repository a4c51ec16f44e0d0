"""Errors a user can fix: stages print them as one line and exit non-zero, no traceback."""


class UserError(Exception):
    """Bad input from the user (params, data files, model files, prompts)."""


class ParamsError(UserError):
    """params.yaml does not match the schema."""


class DataError(UserError):
    """A data file is missing, unreadable or has the wrong content."""
