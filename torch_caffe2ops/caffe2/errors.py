"""Errors raised while importing a NetDef. All derive from :class:`NetImportError`."""


class NetImportError(ValueError):
    """The net cannot be turned into a PyTorch module."""


class UnsupportedOperatorError(NetImportError):
    """The net uses operator types that have no converter (all of them are listed)."""


class UnknownArgumentError(NetImportError):
    """An operator carries an argument its converter does not understand."""


class TrainingNetError(NetImportError):
    """The net contains gradient or training-only operators: it is not a predict net."""


class InvalidArgumentError(NetImportError):
    """An argument has a value or a type Caffe2 would reject."""
