"""What venueguard knows about venues reached through ccxt: error bodies, rule overrides,
client order id parameters. Pure data and functions; the asyncio side is ``venueguard.ccxt``."""
