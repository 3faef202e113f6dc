"""Delivery: the model store, signed manifests and the service devices fetch models from."""
