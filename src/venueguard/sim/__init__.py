"""The fault-injecting exchange simulator, speaking BitMEX and Binance USDⓈ-M.

Layout. Each dialect is a subpackage that translates: :mod:`venueguard.sim.bitmex` (REST under
``/api/v1``, the ``/realtime`` websocket, its replay format) and :mod:`venueguard.sim.binance`
(``/fapi``, ``/ws`` and ``/stream``, listenKeys, its replay format). What they share sits here,
below both, and imports neither:

- the engine and its truth: ``engine``, ``book``, ``matching``, ``market``, ``orders``,
  ``positions``, ``instruments``, ``rows``, ``fields``, ``model``, ``clock``;
- faults and scenarios: ``faults``, ``effects``, ``edge``, ``overload``, ``ratelimit``,
  ``scenario``;
- the connection machinery: ``fanout`` (frames written without holding the loop), ``wsfaults``
  (the websocket faults of one connection, also used by the proxy), ``conn`` (one connection's
  queue, writer, fault hits, send path and close), ``wshub`` (the read loop, faults on new and
  open connections, subscription cleanup), ``replayer`` (the replay player);
- the HTTP plumbing: ``httpserver``, ``resolver``.

``server``, ``cli`` and ``testing`` sit above: they put a simulator together from the engine and
the dialects it serves. ``control`` serves the control API (``/_sim``) and holds the key under
which a dialect's routes find the server.
"""
