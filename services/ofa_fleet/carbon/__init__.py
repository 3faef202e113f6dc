"""Energy and emissions of the compute the system runs, and what training once saves.

Every compute step (supernet training per phase, accuracy-predictor fitting, each
specialization, each device's on-boot profiling) is metered as the CPU seconds of the
processes doing it, turned into joules by a `PowerModel` and into grams of CO2e by a
`GridIntensity`. The ledger built from those entries sets the cost of training once
against a measured counterfactual: training one specialized network per profile.
"""
