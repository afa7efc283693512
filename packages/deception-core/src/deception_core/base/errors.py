"""Errors the command line turns into exit codes.

`UsageError` is bad input: the message names the problem and the fix, and the CLI exits with 2
before any expensive work starts.
"""

from __future__ import annotations


class DeceptionError(Exception):
    """Base class of the toolkit's own errors."""


class UsageError(DeceptionError):
    """Bad input from the user (a flag, a config key, a file). Exit code 2."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration that cannot be run as given."""


class PluginError(DeceptionError):
    """A plugin broke the rules of the plugin core (duplicate names, bad registration)."""


class ComponentNotFound(UsageError):
    """A component name that no loaded plugin registers."""


class NotApplied(DeceptionError):
    """A command that did its work but refused to apply the result (a judge that failed too often):
    the message says why and names what was kept unchanged. Exit code 1."""

    exit_code = 1


class EngineFailed(DeceptionError):
    """A generation engine (a serving engine reached over HTTP) stopped answering mid-run, after its
    retries, or answered in a way the run cannot use. Exit code 1; the runner names the trials kept."""

    exit_code = 1
