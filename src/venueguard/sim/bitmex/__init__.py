"""The simulator's BitMEX dialect (``venueguard sim``, the default): REST under ``/api/v1`` and the
``/realtime`` websocket."""
