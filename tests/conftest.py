"""Shared fixtures. Tests run with two torch threads, as the target machine has."""

from __future__ import annotations

import torch

torch.set_num_threads(2)
