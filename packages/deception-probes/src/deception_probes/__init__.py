"""deception_probes: Probes, splits, metrics, nulls, generalisation and SAE-feature probes of the deception toolkit."""
