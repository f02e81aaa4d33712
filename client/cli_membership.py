"""``tradeledger keys enrol|rotate|revoke|status`` and ``tradeledger gov propose|vote|show``.

Every command signs with an organisation's admin key file and talks to a node
through :class:`client.sdk.Client` (specs/membership.md). Submissions wait for
the block by default and exit 3 when the ledger refuses them, like
``tradeledger tx submit``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from client.cli_common import JsonOpt, NodeOpt, _emit, _fail, _member_key, err, out
from ledger.errors import LedgerError

keys_app = typer.Typer(no_args_is_help=True)
gov_app = typer.Typer(help="Governance: propose and vote on membership and quorum changes.",
                      no_args_is_help=True)

AdminOpt = Annotated[Path, typer.Option("--admin-key", help="The organisation's admin key "
                                        "file; it signs the transaction and the requests.")]
ReaderOpt = Annotated[Path, typer.Option("--key", envvar="TRADELEDGER_KEY",
                                         help="A member key file of yours; it signs the "
                                              "requests.")]
WaitOpt = Annotated[bool, typer.Option(help="Wait until the transaction is ordered.")]


def _public_key(path: Path) -> str:
    """The public key of a key file (no passphrase needed)."""
    from ledger.keys import read_key_info

    try:
        return str(read_key_info(path)["public_key"])
    except LedgerError as exc:
        raise _fail(exc.message) from exc


def _submit(node: str, admin_key: Path, tx_type: str, payload: dict[str, Any], *,
            wait: bool, as_json: bool) -> dict[str, Any]:
    """Sign ``payload`` with the admin key, submit it and report the outcome."""
    from client.sdk import Client, NodeError, TxBuilder

    key = _member_key(admin_key)
    with Client(node, key=key) as client:
        try:
            tx = TxBuilder(key, chain_id=client.chain_id).build(tx_type, payload)
            result = client.submit(tx)
            if wait and result["status"] == "pending":
                result = client.wait(tx.tx_id_hex)
        except (NodeError, LedgerError) as exc:
            raise _fail(str(exc)) from exc
    table = Table("tx id", "type", "status", "height", "detail")
    table.add_row(result["tx_id"], tx_type, result["status"], str(result.get("height", "")),
                  str(result.get("code", "")) + " " + str(result.get("message", "")))
    _emit(result, as_json, table)
    if result["status"] == "rejected":
        raise typer.Exit(3)
    return result


def _read(node: str, key: Path, call: str, *args: str) -> Any:
    from client.sdk import Client, NodeError

    with Client(node, key=_member_key(key)) as client:
        try:
            return getattr(client, call)(*args)
        except NodeError as exc:
            raise _fail(str(exc)) from exc


def _until(value: str | None, hours: float | None) -> str:
    from ledger.timefmt import format_time, parse_time

    if (value is None) == (hours is None):
        raise _fail("give exactly one of --until (RFC 3339 UTC) and --hours")
    if value is not None:
        try:
            return format_time(parse_time(value, field="until"))
        except LedgerError as exc:
            raise _fail(exc.message) from exc
    assert hours is not None
    return format_time(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours))


# -- keys -----------------------------------------------------------------------------


@keys_app.command("enrol")
def keys_enrol(
    org: Annotated[str, typer.Option(help="The organisation the key belongs to.")],
    key_file: Annotated[Path, typer.Option("--key-file", help="Key file of the new key "
                                           "(its public part is read).")],
    admin_key: AdminOpt,
    kind: Annotated[str, typer.Option(help="member, admin or node.")] = "member",
    label: str = "",
    node: NodeOpt = "http://127.0.0.1:8700",
    wait: WaitOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Enrol a member, admin or node key of your organisation (signed by its admin key)."""
    payload = {"org": org, "public_key": _public_key(key_file), "kind": kind}
    if label:
        payload["label"] = label
    _submit(node, admin_key, "membership.key_enrol", payload, wait=wait, as_json=as_json)


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The key to replace.")],
    new_key: Annotated[Path, typer.Option("--new-key", help="Key file of the successor.")],
    admin_key: AdminOpt,
    until: Annotated[str | None, typer.Option(help="End of the overlap window (RFC 3339 "
                                              "UTC).")] = None,
    hours: Annotated[float | None, typer.Option(help="Overlap window from now, in "
                                                "hours.")] = None,
    node: NodeOpt = "http://127.0.0.1:8700",
    wait: WaitOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Replace a key: the successor signs at once, the old key until the window ends."""
    payload = {"key_id": key_id, "new_public_key": _public_key(new_key),
               "overlap_until": _until(until, hours)}
    _submit(node, admin_key, "membership.key_rotate", payload, wait=wait, as_json=as_json)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key to revoke.")],
    reason: Annotated[str, typer.Option(help="Why (recorded on the ledger).")],
    admin_key: AdminOpt,
    node: NodeOpt = "http://127.0.0.1:8700",
    wait: WaitOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key from the next block on; what it signed before stays valid."""
    _submit(node, admin_key, "membership.key_revoke", {"key_id": key_id, "reason": reason},
            wait=wait, as_json=as_json)


def key_warnings(keys: list[dict[str, Any]], policy: dict[str, Any], now: datetime,
                 warn_days: int) -> list[str]:
    """Warnings ahead of any end of validity: overlap windows, recommended rotation age."""
    from ledger.timefmt import parse_time

    warnings = []
    horizon = now + timedelta(days=warn_days)
    rotate_after = policy.get("keys", {}).get("rotate_after_days")
    for key in keys:
        if key["status"] != "active":
            continue
        if key.get("valid_until"):
            ends = parse_time(key["valid_until"], field="valid_until")
            if ends < now:
                warnings.append(f"key {key['key_id']} ({key['kind']}) stopped signing at "
                                f"{key['valid_until']}; use {key['rotated_to']}")
            elif ends <= horizon:
                warnings.append(f"key {key['key_id']} ({key['kind']}) stops signing at "
                                f"{key['valid_until']}; switch to {key['rotated_to']} before")
            continue
        if rotate_after and key.get("enrolled_at"):
            due = parse_time(key["enrolled_at"], field="enrolled_at") + timedelta(
                days=int(rotate_after))
            if due <= horizon:
                warnings.append(f"key {key['key_id']} ({key['kind']}) is due for rotation on "
                                f"{due.date().isoformat()} (policy: every {rotate_after} days)")
    return warnings


@keys_app.command("status")
def keys_status(
    org: Annotated[str, typer.Option(help="The organisation whose keys to list.")],
    key: ReaderOpt,
    warn_days: Annotated[int, typer.Option(help="Warn this many days ahead.")] = 14,
    node: NodeOpt = "http://127.0.0.1:8700",
    as_json: JsonOpt = False,
) -> None:
    """List an organisation's keys with their status and warn ahead of any end of validity."""
    found = _read(node, key, "organisation", org)
    now = datetime.now(UTC)
    warnings = key_warnings(found["keys"], found["policy"], now, warn_days)
    table = Table("key id", "kind", "state", "since", "valid until", "successor", "label")
    for key in found["keys"]:
        table.add_row(key["key_id"], key["kind"], key["state"],
                      f"{key['since']} ({key.get('enrolled_at') or '?'})",
                      str(key.get("valid_until") or ""), str(key.get("rotated_to") or ""),
                      str(key.get("label", "")))
    _emit({"organisation": found["organisation"], "keys": found["keys"],
           "warnings": warnings}, as_json, table)
    if not as_json:
        for warning in warnings:
            err.print(f"[yellow]warning:[/yellow] {warning}")


# -- governance -------------------------------------------------------------------------


def _action(add_org: str | None, name: str, roles: list[str], country: str,
            with_key: list[str], remove_org: str | None, set_roles: str | None,
            quorum: str | None, action_file: Path | None,
            encryption_public_key: str = "") -> dict[str, Any]:
    chosen = [a for a in (add_org, remove_org, set_roles, quorum, action_file) if a]
    if len(chosen) != 1:
        raise _fail("give exactly one of --add-org, --remove-org, --set-roles, --quorum, "
                     "--action")
    if action_file is not None:
        try:
            action: dict[str, Any] = json.loads(action_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _fail(f"{action_file}: {exc}") from exc
        return action
    if remove_org:
        return {"kind": "org_remove", "org_id": remove_org}
    if set_roles:
        org_id, _, listed = set_roles.partition("=")
        return {"kind": "org_roles", "org_id": org_id,
                "roles": [r for r in listed.split(",") if r]}
    if quorum:
        listed, _, threshold = quorum.partition(":")
        if not threshold.isdigit():
            raise _fail("--quorum is VALIDATOR,VALIDATOR,...:THRESHOLD")
        return {"kind": "quorum", "validators": [v for v in listed.split(",") if v],
                "threshold": int(threshold)}
    keys: dict[str, list[str]] = {"admin_keys": [], "member_keys": [], "node_keys": []}
    for item in with_key:
        kind, _, path = item.partition("=")
        if f"{kind}_keys" not in keys or not path:
            raise _fail(f"--with-key {item!r}: use admin=PATH, member=PATH or node=PATH")
        keys[f"{kind}_keys"].append(_public_key(Path(path)))
    org = {"id": add_org, "name": name or add_org, "roles": roles, **keys}
    if country:
        org["country"] = country
    if encryption_public_key:
        org["encryption_key"] = encryption_public_key
    return {"kind": "org_add", "org": org}


@gov_app.command("propose")
def gov_propose(
    proposal_id: Annotated[str, typer.Argument(help="A new id for the proposal.")],
    admin_key: AdminOpt,
    add_org: Annotated[str | None, typer.Option(help="Add an organisation with this id.")] = None,
    name: Annotated[str, typer.Option(help="--add-org: its name.")] = "",
    role: Annotated[list[str] | None, typer.Option(help="--add-org: a role (repeat).")] = None,
    country: Annotated[str, typer.Option(help="--add-org: ISO 3166 country code.")] = "",
    with_key: Annotated[list[str] | None, typer.Option(
        help="--add-org: KIND=KEYFILE, KIND one of admin, member, node (repeat).")] = None,
    encryption_public_key: Annotated[str, typer.Option(
        help="--add-org: its X25519 public key (64 hex) for sealed trade details.")] = "",
    remove_org: Annotated[str | None, typer.Option(help="Remove this organisation.")] = None,
    set_roles: Annotated[str | None, typer.Option(help="ORG=ROLE,ROLE: replace its "
                                                  "roles.")] = None,
    quorum: Annotated[str | None, typer.Option(help="VALIDATOR,...:THRESHOLD: a new "
                                               "validator quorum.")] = None,
    action: Annotated[Path | None, typer.Option(help="A JSON file with the action.")] = None,
    days: Annotated[float, typer.Option(help="Voting period from now, in days.")] = 7.0,
    reason: str = "",
    node: NodeOpt = "http://127.0.0.1:8700",
    wait: WaitOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Propose a membership or quorum change; your organisation approves it by proposing."""
    payload: dict[str, Any] = {
        "proposal_id": proposal_id,
        "action": _action(add_org, name, role or [], country, with_key or [], remove_org,
                          set_roles, quorum, action, encryption_public_key),
        "deadline": _until(None, days * 24),
    }
    if reason:
        payload["reason"] = reason
    _submit(node, admin_key, "membership.proposal", payload, wait=wait, as_json=as_json)


@gov_app.command("vote")
def gov_vote(
    proposal_id: Annotated[str, typer.Argument(help="The proposal.")],
    decision: Annotated[str, typer.Argument(help="approve or reject.")],
    admin_key: AdminOpt,
    reason: str = "",
    node: NodeOpt = "http://127.0.0.1:8700",
    wait: WaitOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Cast your organisation's one vote on an open proposal."""
    payload = {"proposal_id": proposal_id, "decision": decision}
    if reason:
        payload["reason"] = reason
    _submit(node, admin_key, "membership.vote", payload, wait=wait, as_json=as_json)


@gov_app.command("show")
def gov_emit(
    key: ReaderOpt,
    proposal_id: Annotated[str | None, typer.Argument(help="One proposal (default: "
                                                      "all).")] = None,
    node: NodeOpt = "http://127.0.0.1:8700",
    as_json: JsonOpt = False,
) -> None:
    """Show proposals with their status and votes."""
    if proposal_id is None:
        found = _read(node, key, "proposals")
        table = Table("proposal", "action", "state", "approvals", "needed", "deadline")
        for p in found:
            table.add_row(p["proposal_id"], p["action"]["kind"], p["state"],
                          str(len(p["approvals"])), str(p.get("needed", "")), p["deadline"])
        _emit({"proposals": found}, as_json, table)
        return
    one = _read(node, key, "proposal", proposal_id)
    p = one["proposal"]
    table = Table("organisation", "vote", "height")
    for org, vote in sorted(one["votes"].items()):
        table.add_row(org, vote["decision"], str(vote["height"]))
    _emit(one, as_json, table)
    if not as_json:
        detail = f" ({p['failure']['code']}: {p['failure']['message']})" if "failure" in p \
            else ""
        out.print(f"{p['proposal_id']}: {p['action']['kind']} is {p['state']}{detail}; "
                  f"{len(p['approvals'])} of {p.get('needed', '?')} approvals needed; "
                  f"deadline {p['deadline']}")
