"""The RPC front-ends: JSON-RPC 2.0 and XML-RPC on the same registry as REST.

``POST /rpc/json``, ``POST /rpc/xml`` and ``POST /rpc`` (either, told apart by
:mod:`mailroom.frontends.rpc.detect`); ``GET /rpc/openrpc.json``. See docs/rpc.md.
"""

from mailroom.frontends.rpc.detect import RpcEndpoint, RpcProtocol, protocols, rpc_routes

__all__ = ["RpcEndpoint", "RpcProtocol", "protocols", "rpc_routes"]
