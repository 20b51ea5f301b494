"""Inputs for the pools' tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fetchpool import Target


class StalledSource:
    """A `TargetSource` that hands out `first`, then waits for input that never comes,
    having read `unread` without handing it out (its leftovers after a cancel)."""

    def __init__(self, first: Target, unread: list[Target]) -> None:
        self.first = first
        self.unread = unread

    async def _targets(self) -> AsyncIterator[Target]:
        yield self.first
        await asyncio.Event().wait()  # the rest of the input never comes

    def __aiter__(self) -> AsyncIterator[Target]:
        return self._targets()

    def leftovers(self) -> list[Target]:
        left, self.unread = self.unread, []
        return left
