"""TradeLedger's pure core: encoding, keys, records, blocks, Merkle log, contracts.

No network I/O and no wall clock here (specs/protocol.md). ``SPEC_VERSION`` is
the version line of specs/protocol.md, checked by the tests.
"""

SPEC_VERSION = "1.0"
