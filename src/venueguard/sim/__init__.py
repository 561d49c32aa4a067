"""The fault-injecting exchange simulator, speaking BitMEX and Binance USDⓈ-M.

Layout: each dialect is a subpackage, :mod:`venueguard.sim.bitmex` (REST under ``/api/v1``, the
``/realtime`` websocket, its replay) and :mod:`venueguard.sim.binance` (``/fapi``, ``/ws`` and
``/stream``, its replay). What they share sits here, below both, and imports neither: the engine
and its truth (``engine``, ``book``, ``matching``, ``market``, ``model``, ``rows``), faults and
scenarios (``faults``, ``effects``, ``edge``, ``overload``, ``scenario``), the clock, and the
connection machinery (``fanout``; the fault hits and send path of one connection, the read loop
and subscription cleanup of a hub, the replay player). ``server``, ``cli`` and ``testing`` put a
simulator together from the engine and the dialects it serves.
"""
