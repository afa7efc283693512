"""The vocabulary every layer shares: enums and messages, the typed records between stages, errors, the plugin registry."""
