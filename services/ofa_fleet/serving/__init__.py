"""What every OFA Fleet server shares: bootstrap, access control, error mapping, logging."""
