"""Search: the best subnet of the supernet for a hardware profile, found without training.

`evolution` (pure, no Ray) proposes and selects candidates that `workers` score on Ray;
`specializer` re-ranks the best by real accuracy and exports the winner; `servicer` is
the thin gRPC layer over it.
"""
