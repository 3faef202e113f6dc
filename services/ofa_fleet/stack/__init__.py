"""The whole system on one machine: `ofa-fleet up` (three servers) and `ofa-fleet demo`."""
