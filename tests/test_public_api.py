"""The client package's public surface is deliberate: changing it fails here."""

from __future__ import annotations

import client


def test_client_all_is_pinned() -> None:
    assert sorted(client.__all__) == [
        "AsyncClient", "BundleError", "Client", "NodeError", "RequestSigner", "TxBuilder",
        "VerifiedRecord",
        "new_nonce", "verify_consistency_bundle", "verify_inclusion_bundle",
    ]
    for name in client.__all__:
        assert getattr(client, name) is not None


def test_offline_verifier_imports_nothing_but_pynacl_and_stdlib() -> None:
    import ast
    import sys
    from pathlib import Path

    source = Path(client.__file__).with_name("verify.py").read_text()
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    modules.discard("__future__")
    assert modules - set(sys.stdlib_module_names) <= {"nacl"}
