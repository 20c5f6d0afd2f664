"""The rpc command: call a Python handler registered on the node."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...codes import ERROR_LIMIT_EXCEEDED, ERROR_METHOD_NOT_FOUND
from ...exceptions import CommandError
from ..codec.schema import Reply, RPCRequest, RPCResult, raw
from ..contexts import RPCContext

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["rpc"]


async def rpc(session: Session, command_id: int, request: RPCRequest) -> Reply:
    node = session.node
    handler = node.rpc_handlers.get(request.method) or node.on_rpc
    if handler is None:
        raise CommandError(ERROR_METHOD_NOT_FOUND)
    in_flight_limit = node.config.rpc_in_flight_limit
    if in_flight_limit is not None and session.rpc_in_flight >= in_flight_limit:
        raise CommandError(ERROR_LIMIT_EXCEEDED)
    session.rpc_in_flight += 1
    try:
        result = await handler(
            RPCContext(session=session, method=request.method, data=bytes(request.data) if request.data else None)
        )
    finally:
        session.rpc_in_flight -= 1
    data = raw(None if result is None else session.outgoing_data(result))
    return Reply(id=command_id, rpc=RPCResult(data=data))
