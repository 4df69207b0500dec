"""IPC mode: ``toondb-server`` serves one database to many processes over a Unix
socket; ``IpcClient`` uses it with the interface of the embedded ``Database``.
The wire protocol is in docs/ipc-protocol.md and ``toondb.ipc.protocol``."""

from toondb.ipc.client import IpcClient, IpcTransaction

__all__ = ["IpcClient", "IpcTransaction"]
