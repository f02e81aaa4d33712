"""What every ``tradeledger`` command shares: consoles, common options, output."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ledger.errors import LedgerError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for programs.")]
NodeOpt = Annotated[str, typer.Option("--node", envvar="TRADELEDGER_NODE",
                                      help="Base URL of the node.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _emit(data: Any, as_json: bool, table: Table | None = None) -> None:
    if as_json or table is None:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        out.print(table)


def _passphrase(confirm: bool = False) -> str:
    value = os.environ.get("TRADELEDGER_PASSPHRASE")
    if value is not None:
        return value
    return str(typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))


ReaderKeyOpt = Annotated[Path, typer.Option(
    "--key", envvar="TRADELEDGER_KEY",
    help="Your member key file: the node signs you in with it and shows what your "
         "organisation may read.")]


def _member_key(path: Path) -> Any:
    from ledger.keys import load_key

    try:
        return load_key(path, _passphrase())
    except LedgerError as exc:
        raise _fail(exc.message) from exc
