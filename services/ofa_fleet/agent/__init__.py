"""The device agent: what a device runs to fetch, verify and install its model."""
