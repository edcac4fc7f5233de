"""Who is asking: the caller a request was authenticated as, and what it may see.

A run belongs to the caller that created it. Another caller is told the run does not
exist (never "forbidden", which would confirm that it does); an admin sees every run.
Without API keys every request comes from one caller, ``anonymous``, who sees all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    name: str  # the owner recorded on the runs this caller creates
    admin: bool = False  # sees and may act on every caller's runs

    def may_see(self, owner: str) -> bool:
        return self.admin or owner == self.name


ANONYMOUS = Caller("anonymous", admin=True)
