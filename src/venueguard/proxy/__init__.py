"""``venueguard proxy``: an exchange-aware reverse proxy in front of any venue, for any bot.

It forwards REST and websockets unchanged (signatures stay valid: the venues sign path, query and
body, never the host), injects the simulator's faults on demand through the same control API
(``POST/GET/DELETE /_sim/faults`` on its own port), plays the simulator's scenarios, and can guard
everything behind it: classification of every upstream answer with the monitor's events,
metrics, dashboard and journal (for ``venueguard report``), health per account key, silent
upstream streams closed towards the client, and with Redis the fleet's shared limits,
cooldowns and bans.

Modules: :mod:`~venueguard.proxy.dialects` (what each venue's answers look like and where its
timestamps and sequence numbers are), :mod:`~venueguard.proxy.rest` (REST forwarding and faults)
over :mod:`~venueguard.proxy.upstream` (a lean keep-alive HTTP/1.1 client),
:mod:`~venueguard.proxy.ws` (websocket bridging and faults), :mod:`~venueguard.proxy.guard`
(classification, metrics, dashboard, the shared account) with
:mod:`~venueguard.proxy.accounts` (health per API key) and :mod:`~venueguard.proxy.recording`
(the journal ``venueguard report`` reads), :mod:`~venueguard.proxy.server` (the
application) on :mod:`~venueguard.proxy.runner` (an HTTP server that never logs a request's
content), :mod:`~venueguard.proxy.cli` (the command), :mod:`~venueguard.proxy.testing` (running
it in-process). See docs/commands/proxy.md.
"""
