"""Keeping every profile's model current: the reconciler (one leader per fleet of
replicas), the fleet monitor that drives staged rollouts, and delivery's metrics."""
