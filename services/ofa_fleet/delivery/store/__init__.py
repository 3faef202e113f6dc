"""What delivery keeps, in its database and blob store: models, rollouts, specialization
state and supernet ledgers. Nothing here talks to another service."""
