"""The simulator's Binance USDⓈ-M futures dialect (``venueguard sim --dialect binance-usdm``)."""
