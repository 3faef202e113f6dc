"""What a device and the servers share, and nothing else: the contract between them.

The model manifest and the check of its signature, the validators for names, digests
and free text, the token prefixes, and a fleet's rollout policy with its protobuf form.
The device agent imports this package and no server package, so it stays small enough
for a device (no torch, Ray or SQLAlchemy in its import closure); the registry,
delivery and the CLI import it so that each rule is written once.
"""
