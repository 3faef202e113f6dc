"""Delivery's side of the carbon ledger: totals for the metrics, and the report that sets
training once against training one network per profile."""
