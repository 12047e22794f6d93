"""``esafety audit verify|export|keygen``: an audit trail an inspector can check.

``verify`` checks every chain (or one) against its hashes and its signed head,
on Redis or in an export file with no Redis at all, and names each broken chain
and entry; it exits 1 if anything is broken. The keys it trusts are pinned
(``--public-key``, ``ESAFETY_AUDIT_PUBLIC_KEY_PATH``, or the signing key's own
public half); keys read from the store or the file are only used, with a
warning, when nothing is pinned, since whoever can rewrite Redis can also add a key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..audit_export import export_lines, read_export, read_store, store_keys
from ..audit_verify import Report, verify_records
from ..settings import Settings
from ..signing import generate_key_file, load_public_keys, public_pem
from ..store import RedisStore
from .common import fail, open_app, parse_time, print_json, settings

__all__ = ["export", "keygen", "pinned_keys", "register", "verify"]

KeyOpt = Annotated[
    list[Path] | None,
    typer.Option("--public-key", help="PEM public key to trust (repeatable); pins the check."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object on stdout, for tools.")]


def _pems(paths: list[Path]) -> list[str]:
    try:
        return [p.read_text("utf-8") for p in paths]
    except OSError as exc:
        fail(f"cannot read a public key: {exc.strerror} ({exc.filename})", 2)


def pinned_keys(current: Settings, files: list[Path] | None) -> dict[str, Ed25519PublicKey]:
    """Keys chosen by the person who checks, not read from what is being checked."""
    paths = list(files or [])
    if not paths and current.audit_public_key_path:
        paths = [Path(current.audit_public_key_path).expanduser()]
    if not paths:
        private = current.audit_key_file()
        paths = [private] if private is not None and private.exists() else []
    try:
        return load_public_keys(_pems(paths))
    except ValueError as exc:
        fail(f"a public key is not a usable Ed25519 key ({exc})", 2)


def _trust(
    pinned: dict[str, Ed25519PublicKey], found: dict[str, Ed25519PublicKey], where: str
) -> dict[str, Ed25519PublicKey]:
    if pinned:
        typer.echo(f"trusted key(s): {', '.join(sorted(pinned))} (pinned)", err=True)
        return pinned
    typer.echo(
        f"warning: no key pinned; trusting key(s) {', '.join(sorted(found)) or 'none'} read "
        f"from {where}. Compare the key id with the one your organisation published, or "
        "pass --public-key.",
        err=True,
    )
    return found


def _report(report: Report, json_out: bool) -> None:
    if json_out:
        print_json(report.as_dict())
    else:
        for finding in report.findings:
            typer.echo(str(finding))
        state = "OK" if report.ok else f"BROKEN: {len(report.broken_chains())} chain(s)"
        typer.echo(f"audit: {report.chains} chain(s), {report.entries} entries checked: {state}")
    if not report.ok:
        raise typer.Exit(1)


def verify(
    case: Annotated[str | None, typer.Option("--case", help="Only this chain.")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", exists=True, dir_okay=False, help="An export; no Redis needed."),
    ] = None,
    public_key: KeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check hash chains and signed heads; name every broken chain and entry (exit 1)."""
    if file is not None:
        try:
            _, records, found = read_export(file.read_text("utf-8").splitlines())
        except (OSError, ValueError) as exc:
            fail(f"{file}: {exc}", 2)
        if case is not None:
            records = [r for r in records if r.case_id == case]
        trusted = _trust(pinned_keys(settings(), public_key), found, "the file")
        _report(verify_records(records, trusted), json_out)
        return
    if settings().embedded:
        fail("audit verify reads the store (set ESAFETY_REDIS_URL) or an export (--file FILE)", 2)
    app = open_app(quiet=True)
    records = read_store(app.store, case)
    if case is not None and not records:
        fail(f"no audit chain {case!r}; check the case id (esafety cases)", 1)
    found = load_public_keys(store_keys(app.store).values())
    trusted = _trust(pinned_keys(app.settings, public_key), found, "the store")
    _report(verify_records(records, trusted), json_out)


def _export_keys(store: RedisStore, pinned: dict[str, Ed25519PublicKey]) -> dict[str, str]:
    keys = store_keys(store)
    keys.update({kid: public_pem(key) for kid, key in pinned.items()})
    return keys


def export(
    case: Annotated[str | None, typer.Option("--case", help="Only this chain.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Entries at or after T.")] = None,
    public_key: KeyOpt = None,
) -> None:
    """Write chains, signed heads and public keys as JSONL on stdout, for archiving."""
    moment = parse_time(since, "--since")
    app = open_app(quiet=True)
    records = read_store(app.store, case)
    keys = _export_keys(app.store, pinned_keys(app.settings, public_key))
    for line in export_lines(records, keys=keys, now=app.clock.now(), case_id=case, since=moment):
        typer.echo(line)


def keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the private key (mode 0600).")],
) -> None:
    """Make the Ed25519 key that signs chain heads; prints its public key (to publish)."""
    try:
        signer = generate_key_file(path)
    except FileExistsError:
        fail(f"{path} exists; refusing to overwrite a signing key", 2)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}", 2)
    typer.echo(json.dumps({"key_id": signer.key_id, "public_key_pem": signer.public_pem}))


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Check and export the audit trail.", no_args_is_help=True)
    group.command()(verify)
    group.command()(export)
    group.command()(keygen)
    app.add_typer(group, name="audit")
