"""A template third-party scenario plugin for the deception toolkit."""
