"""The fault-injecting exchange simulator that speaks the BitMEX protocol."""
