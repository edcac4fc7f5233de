"""Project settings: registers the ledger hook so the tests can see project hooks run."""

from kr_testproject.hooks import LedgerHooks

HOOKS = (LedgerHooks(),)
