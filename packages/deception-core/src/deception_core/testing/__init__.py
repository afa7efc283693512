"""Test support shipped with the core: tiny offline models and fakes that subclass the real interfaces.

Plugin authors get the same fixtures through the ``pytest11`` entry point
(`deception_core.testing.pytest_plugin`).
"""
