"""The only places that touch private attributes of the media and SIP libraries (one module per library).

Each module names the versions it was written against and has a ``check()`` that raises
:class:`PrivateApiChanged` when the installed library no longer has what it uses; tests/test_adapters.py calls
every ``check()``, so an upgrade that moves a private attribute fails loudly in the test suite, not silently in
a call.
"""

from __future__ import annotations


class PrivateApiChanged(RuntimeError):
    """The installed library no longer has a private attribute an adapter relies on."""
