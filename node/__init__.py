"""The TradeLedger node: HTTP API, solo ordering, explorer pages."""
