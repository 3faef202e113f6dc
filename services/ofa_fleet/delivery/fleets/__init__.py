"""Fleets and their devices as the registry knows them, and the model each fleet's
devices should run now by its rollout policy."""
