"""The six built-in negotiation scenarios, one module each (facts, prompts, parser, rule, resolution)."""
