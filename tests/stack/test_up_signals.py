"""`up`'s signal handling in-process: SIGINT and SIGTERM end it alike, even where SIGINT
came in ignored (a shell's background job), and what was set before comes back."""

from __future__ import annotations

import os
import signal

import pytest

from ofa_fleet.cli.up_command import signals_as_interrupts


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_both_signals_interrupt_even_where_sigint_was_ignored(signum: int) -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(KeyboardInterrupt), signals_as_interrupts():
            os.kill(os.getpid(), signum)  # the handler runs before the next statement
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
