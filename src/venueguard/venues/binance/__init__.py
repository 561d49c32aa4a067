"""Binance USDⓈ-M: market-data decoding and the documented depth sync."""
