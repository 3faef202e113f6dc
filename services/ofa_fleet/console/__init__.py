"""What a person at a terminal sees: results as tables or JSON, and progress bars.

Shared by the command line and the local stack (`ofa-fleet up`, `demo`), so that both
show work the same way; it imports nothing of the project but errors.
"""
