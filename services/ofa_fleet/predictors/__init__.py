"""Predictors: how fast, how big and how accurate a subnet will be on a device."""
