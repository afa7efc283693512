"""deception_scenarios: Negotiation scenarios, agents, game master and evaluators of the deception toolkit."""
