"""``venueguard monitor``: the main job (DESIGN.md 3.1).

With no arguments it starts the embedded simulator with the scenario ``503-lesson``, connects to
it, serves the dashboard on http://127.0.0.1:8765 (metrics on /metrics), journals to
``./venueguard.db`` and prints a one-line live status. Once listening it logs ``monitor.ready``
with ``dashboard_url`` and ``metrics_url``. ``--duration``, SIGINT and SIGTERM stop it cleanly
(exit 0): the strategy stops first (a trader disarms its dead man's switch), then the journal is
flushed and everything closes.

What runs, supervised in one TaskGroup (a component that fails is reported with a critical
alert and the others keep running; the exit code is then 1):

- the market-data session (websocket: book, trades, liveness);
- the REST health probe (:mod:`venueguard.app.probe`): ``GET /instrument`` every few seconds on
  any venue; on the simulator only, also a tiny post-only order far from the market, cancelled
  at once, because the simulator (like BitMEX) sheds load only on new orders and amends;
- the one-second tick (:class:`venueguard.app.ticker.Ticker`): snapshots and predictor, regime,
  liveness alerts, market metrics, dashboard series, journal samples, the status line;
- the journal writer (:mod:`venueguard.app.recorder`: samples and every event, for
  ``venueguard report``);
- with ``--trade demo``, the trader from ``venueguard.app.demo`` (imported only then).

The trader hook: ``venueguard.app.demo.create_trader(ctx: MonitorContext) -> Trader`` (see
:class:`Trader`). The monitor pauses it after 3 failed reconnects and while the regime is SAFE.

Environment: ``VENUEGUARD_API_KEY`` / ``VENUEGUARD_API_SECRET`` (real venues; the simulator's
documented test pair otherwise), ``VENUEGUARD_ALERT_WEBHOOK`` (alerts also POSTed as JSON),
``VENUEGUARD_PREDICTOR`` (see :mod:`venueguard.app.predictor`), ``VENUEGUARD_SIM_SEED``.
"""
