"""deception_causal: Causal validation (patching, ablation, steering, faithfulness) of the deception toolkit."""
