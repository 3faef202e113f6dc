"""Shared fixtures.

Tests run torch on one thread: with two, a second busy process on a two-core machine
makes OpenMP's threads wait on each other and small ops slow down fifty-fold (measured),
turning a loaded CI machine into a timeout. One thread keeps the suite's time stable.
"""

from __future__ import annotations

import torch

torch.set_num_threads(1)
