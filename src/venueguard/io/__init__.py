"""asyncio adapters that pump the core: clock, sessions, journal, runner."""
