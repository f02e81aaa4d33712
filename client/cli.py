"""The ``tradeledger`` command line (typer + rich).

Every command prints tables for people and, with ``--json``, JSON for
programs. Passphrases come from ``TRADELEDGER_PASSPHRASE`` or a prompt.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from client import cli_confidential, cli_epcis, cli_ratings
from client.cli_common import (
    JsonOpt,
    NodeOpt,
    ReaderKeyOpt,
    _emit,
    _fail,
    _member_key,
    _passphrase,
    err,
    out,
)
from client.consortium import init_consortium, read_description
from client.verify import (
    ATTESTATION_VERSION,
    BundleError,
    verify_consistency_bundle,
    verify_inclusion_bundle,
    verify_rating_attestation,
)
from ledger.errors import LedgerError

app = typer.Typer(help="TradeLedger: a permissioned ledger for trade finance and traceability.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
keys_app = typer.Typer(help="Create and inspect keys.", no_args_is_help=True)
node_app = typer.Typer(help="Run a node.", no_args_is_help=True)
tx_app = typer.Typer(help="Submit and show transactions.", no_args_is_help=True)
proof_app = typer.Typer(help="Fetch and verify proof bundles.", no_args_is_help=True)
explorer_app = typer.Typer(help="Open the node's block explorer.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(node_app, name="node")
app.add_typer(tx_app, name="tx")
app.add_typer(proof_app, name="proof")
app.add_typer(cli_epcis.app, name="epcis")
app.add_typer(cli_confidential.app, name="confidential")
app.add_typer(explorer_app, name="explorer")



# -- keys ---------------------------------------------------------------------


@keys_app.command("new")
def keys_new(path: Annotated[Path, typer.Argument(help="Where to write the key file.")],
             label: str = "", as_json: JsonOpt = False) -> None:
    """Generate an Ed25519 key, encrypted at rest with a passphrase (file mode 0600)."""
    from ledger.keys import SigningKey, save_key

    if path.exists():
        raise _fail(f"{path} exists; refusing to overwrite a key")
    key = SigningKey.generate()
    save_key(path, key, _passphrase(confirm=True), label=label)
    info = {"path": str(path), "key_id": key.key_id, "public_key": key.public_key_hex}
    table = Table("key id", "public key", "file")
    table.add_row(key.key_id, key.public_key_hex, str(path))
    _emit(info, as_json, table)


@keys_app.command("show")
def keys_show(path: Path, as_json: JsonOpt = False) -> None:
    """Show a key file's public part (no passphrase needed)."""
    from ledger.keys import read_key_info

    try:
        info = read_key_info(path)
    except LedgerError as exc:
        raise _fail(exc.message) from exc
    table = Table("label", "key id", "public key")
    table.add_row(str(info.get("label", "")), str(info["key_id"]), str(info["public_key"]))
    _emit(info, as_json, table)


# -- consortium ---------------------------------------------------------------


@app.command("init")
def init(description: Annotated[Path, typer.Argument(help="YAML or TOML description.")],
         out_dir: Annotated[Path, typer.Option("--out", help="Directory to create.")],
         as_json: JsonOpt = False) -> None:
    """Create a consortium: keys for every organisation and a signed genesis file."""
    if (out_dir / "genesis.json").exists():
        raise _fail(f"{out_dir}/genesis.json exists; refusing to overwrite a chain")
    try:
        desc = read_description(description)
        consortium, genesis = init_consortium(desc, out_dir, passphrase=_passphrase(True),
                                              time=datetime.now(UTC).replace(microsecond=0))
    except LedgerError as exc:
        raise _fail(exc.message) from exc
    info = {"chain_id": genesis.chain_id, "genesis_hash": genesis.hash.hex(),
            "genesis": str(consortium.genesis_path), "keys": str(out_dir / "keys")}
    table = Table("chain id", "genesis hash", "genesis file")
    table.add_row(genesis.chain_id, genesis.hash.hex(), str(consortium.genesis_path))
    _emit(info, as_json, table)


# -- node -------------------------------------------------------------------------


@node_app.command("run")
def node_run(
    data: Annotated[Path, typer.Option(help="Data directory (SQLite lives here).")],
    genesis: Annotated[Path, typer.Option(help="Genesis file.")],
    node_key: Annotated[Path, typer.Option("--node-key", help="This node's key file.")],
    org: Annotated[str, typer.Option(help="Organisation running this node.")],
    host: str = "127.0.0.1",
    port: int = 8700,
    database_url: Annotated[str, typer.Option(envvar="DATABASE_URL")] = "",
    encryption_key: Annotated[Path | None, typer.Option(
        "--encryption-key", envvar="TRADELEDGER_ENCRYPTION_KEY",
        help="The organisation's encryption key file: check sealed details sent to it.")
    ] = None,
) -> None:
    """Run a node with solo ordering (SQLite unless DATABASE_URL is set)."""
    import uvicorn

    from node.app import app_from_config
    from node.config import NodeConfig

    config = NodeConfig(data_dir=data, genesis_path=genesis, node_key_path=node_key,
                        node_org=org, passphrase=_passphrase(), database_url=database_url,
                        encryption_key_path=encryption_key)
    try:
        application = app_from_config(config)
    except LedgerError as exc:
        raise _fail(exc.message) from exc
    uvicorn.run(application, host=host, port=port, log_level="warning")


# -- transactions -------------------------------------------------------------------


@tx_app.command("submit")
def tx_submit(
    tx_type: Annotated[str, typer.Argument(help="Transaction type, e.g. trade.order.")],
    payload: Annotated[Path, typer.Argument(help="JSON file with the payload ('-': stdin).")],
    key: Annotated[Path, typer.Option(help="Author's key file.")],
    cosign: Annotated[list[Path] | None, typer.Option(help="Co-signer key files.")] = None,
    chain_id: Annotated[str, typer.Option(envvar="TRADELEDGER_CHAIN")] = "",
    node: NodeOpt = "http://127.0.0.1:8700",
    wait: bool = True,
    as_json: JsonOpt = False,
) -> None:
    """Sign a payload as a transaction and submit it; waits for commit by default."""
    from client.sdk import Client, NodeError, TxBuilder
    from ledger.keys import load_key

    text = sys.stdin.read() if str(payload) == "-" else payload.read_text(encoding="utf-8")
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise _fail(f"payload is not JSON: {exc}") from exc
    passphrase = _passphrase()
    try:
        author = load_key(key, passphrase)
        cosigners = [load_key(p, passphrase) for p in cosign or []]
    except LedgerError as exc:
        raise _fail(exc.message) from exc
    with Client(node, key=author, chain_id=chain_id or None) as client:
        chain = client.chain_id
        try:
            tx = TxBuilder(author, chain_id=chain).build(tx_type, body, cosigners=cosigners)
            result = client.submit(tx)
            if wait and result["status"] == "pending":
                result = client.wait(tx.tx_id_hex)
        except (NodeError, LedgerError) as exc:
            raise _fail(str(exc)) from exc
    table = Table("tx id", "status", "height", "detail")
    table.add_row(result["tx_id"], result["status"], str(result.get("height", "")),
                  str(result.get("message", "")))
    _emit(result, as_json, table)
    if result["status"] == "rejected":
        raise typer.Exit(3)


@tx_app.command("show")
def tx_show(tx_id: str, key: ReaderKeyOpt, node: NodeOpt = "http://127.0.0.1:8700",
            as_json: JsonOpt = False) -> None:
    """Show a transaction's status and, once committed, its content."""
    from client.sdk import Client, NodeError

    with Client(node, key=_member_key(key)) as client:
        try:
            result = client.tx(tx_id)
        except NodeError as exc:
            raise _fail(str(exc)) from exc
    table = Table("tx id", "status", "height", "type", "author")
    body = result.get("transaction", {}).get("body", {})
    table.add_row(result["tx_id"], result["status"], str(result.get("height", "")),
                  str(body.get("type", "")), str(body.get("author", "")))
    _emit(result, as_json, table)


# -- proofs -------------------------------------------------------------------------


@tx_app.command("list")
def tx_list(key: ReaderKeyOpt, node: NodeOpt = "http://127.0.0.1:8700",
            tx_type: Annotated[str | None, typer.Option("--type")] = None,
            limit: int = 50, as_json: JsonOpt = False) -> None:
    """List, newest first, the records your organisation is a party to and public ones."""
    from client.sdk import Client, NodeError

    with Client(node, key=_member_key(key)) as client:
        try:
            result = client.records(limit=limit, tx_type=tx_type)
        except NodeError as exc:
            raise _fail(str(exc)) from exc
    table = Table("seq", "height", "type", "tx id")
    for r in result["records"]:
        table.add_row(str(r["seq"]), str(r["height"]), r["type"], r["tx_id"])
    _emit(result, as_json, table)


@proof_app.command("get")
def proof_get(tx_id: str, key: ReaderKeyOpt,
              output: Annotated[Path | None, typer.Option("--out")] = None,
              node: NodeOpt = "http://127.0.0.1:8700") -> None:
    """Fetch a transaction's proof bundle (JSON) to a file or stdout."""
    from client.sdk import Client, NodeError

    with Client(node, key=_member_key(key)) as client:
        try:
            bundle = client.proof(tx_id)
        except NodeError as exc:
            raise _fail(str(exc)) from exc
    text = json.dumps(bundle, indent=2) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


@proof_app.command("verify")
def proof_verify(
    bundle_file: Annotated[Path, typer.Argument(help="Proof bundle (JSON).")],
    genesis: Annotated[Path, typer.Option(help="The genesis file you trust.")],
    as_json: JsonOpt = False,
) -> None:
    """Verify a proof bundle or a rating attestation offline against a genesis file.
    Exit 1 if it fails."""
    try:
        raw = bundle_file.read_bytes()
        bundle = json.loads(raw)
        anchor_bytes = genesis.read_bytes()
        if isinstance(bundle, dict) and bundle.get("version") == ATTESTATION_VERSION:
            cli_ratings.emit_verified(verify_rating_attestation(anchor_bytes, raw), as_json)
            return
        if isinstance(bundle, dict) and bundle.get("kind") == "consistency":
            verify_consistency_bundle(anchor_bytes, bundle)
            result: dict[str, Any] = {"valid": True, "kind": "consistency",
                                      "old_size": bundle["old_size"],
                                      "new_size": bundle["new_size"]}
        else:
            if not isinstance(bundle, dict):
                raise BundleError("bundle must be a JSON object")
            record = verify_inclusion_bundle(anchor_bytes, bundle)
            # The proof authenticates the leaf's place in the certified log;
            # the block height is the node's word, reported as such.
            result = {"valid": True, "kind": "inclusion", "tx_id": record.tx_id,
                      "leaf_index": record.leaf_index, "stated_height": record.height,
                      "type": record.body.get("type"),
                      "certified_height": record.certified_height,
                      "signed_by": list(record.signed_by)}
    except (BundleError, ValueError, OSError) as exc:
        if as_json:
            sys.stdout.write(json.dumps({"valid": False, "error": str(exc)}) + "\n")
        raise _fail(f"proof does NOT verify: {exc}") from exc
    table = Table("valid", "kind", "detail")
    detail = ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("valid", "kind"))
    table.add_row("[green]yes[/green]", result["kind"], detail)
    _emit(result, as_json, table)


# -- explorer -----------------------------------------------------------------------


@explorer_app.command("login")
def explorer_login(key: ReaderKeyOpt, node: NodeOpt = "http://127.0.0.1:8700",
                   as_json: JsonOpt = False) -> None:
    """Print a one-time link (valid two minutes) that opens the explorer as your
    organisation."""
    import httpx

    from client.sdk import Client, NodeError

    with Client(node, key=_member_key(key)) as client:
        try:
            url = client.explorer_login_url()
        except (NodeError, httpx.HTTPError) as exc:
            raise _fail(str(exc)) from exc
    if as_json:
        _emit({"url": url}, True)
    else:
        out.print(url)


# -- audit --------------------------------------------------------------------------


@app.command("audit")
def audit_cmd(
    database_url: Annotated[str, typer.Option("--db", envvar="DATABASE_URL",
                                              help="SQLAlchemy URL of the node's database.")],
    workers: Annotated[int | None, typer.Option(help="Signature-checking processes.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Walk the chain from genesis and re-verify everything. Exit 1 on any finding."""
    from ledger.audit import audit
    from ledger.store import Store

    store = Store(database_url)
    with Progress(TextColumn("auditing"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total} tx"), TimeRemainingColumn(), console=err,
                  disable=as_json or not err.is_terminal) as bar:
        task = bar.add_task("audit", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = audit(store, workers=workers, progress=progress)
    store.close()
    result: dict[str, Any] = {"ok": report.ok, "blocks": report.blocks, "txs": report.txs,
                              "seconds": round(report.seconds, 3)}
    if report.finding is not None:
        result.update(height=report.finding.height, reason=report.finding.message)
    table = Table("result", "blocks", "transactions", "detail")
    table.add_row("[green]clean[/green]" if report.ok else "[red]FAILED[/red]",
                  str(report.blocks), str(report.txs),
                  "" if report.ok else f"height {result['height']}: {result['reason']}")
    _emit(result, as_json, table)
    if not report.ok:
        raise typer.Exit(1)


@app.command("rebuild")
def rebuild_cmd(database_url: Annotated[str, typer.Option("--db", envvar="DATABASE_URL")],
                ) -> None:
    """Re-derive the state tables from the chain (stop the node first)."""
    from ledger.audit import rebuild_derived
    from ledger.store import Store

    store = Store(database_url)
    try:
        replay = rebuild_derived(store)
    except LedgerError as exc:
        raise _fail(exc.message) from exc
    finally:
        store.close()
    out.print(f"rebuilt {len(replay.state.items)} state entries up to height "
              f"{replay.head.height}")


# -- demo -----------------------------------------------------------------------------


@app.command("demo")
def demo(
    data: Annotated[Path, typer.Option(help="Where the demo consortium lives.")] = Path(
        "var/demo"),
    port: int = 8700,
    seed_only: Annotated[bool, typer.Option(help="Create and seed, do not serve.")] = False,
) -> None:
    """Create the demonstration consortium, start its node and seed a scenario."""
    from client.demo import run_demo

    run_demo(data, port=port, serve=not seed_only, console=out)


cli_ratings.install(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
