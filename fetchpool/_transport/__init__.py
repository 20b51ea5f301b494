"""fetchpool's own HTTP/1.1 transport under httpx, in parts that depend one way:

_errors      what the transport raises in its own words (`EmptyReply`), and httpx's mapped to it
_parser      sans-IO response parser: bytes in, head / body pieces / end out
_connection  one connection: an asyncio protocol that feeds the parser, and the body stream
_pool        busy-connection slots, idle keep-alive connections per origin, FIFO waiters
_resolver    host names to addresses: one shared, cached lookup per name, never starved
_fast        `FastTransport`, the `httpx.AsyncBaseTransport` that puts them together
"""

from ._errors import EmptyReply, as_empty_reply
from ._fast import FastTransport
from ._resolver import Resolver, ThreadBackend, lookup_in_progress

__all__ = [
    "EmptyReply",
    "FastTransport",
    "Resolver",
    "ThreadBackend",
    "as_empty_reply",
    "lookup_in_progress",
]
