"""`idp keys ...`: the signing keys' lifecycle (idp/keys/). No command prints key material."""

from __future__ import annotations

from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup

from ..config import ConfigError
from ..keys import JWKS_ORDER
from ..keys import KeyInfo
from ..keys import KeyStore
from ..keys import RotationError
from ..keys.passphrase import reseal
from ..models.signing_key import ACTIVE
from ..models.signing_key import NEXT
from ..models.signing_key import RETIRED
from . import emit
from . import json_option


@click.group(cls=AppGroup)
def keys():
    """Signing keys: list, rotate, prune. Every worker and host follows within
    KEYS_REFRESH_SECONDS, without a restart."""


def _store() -> KeyStore:
    return current_app.extensions["idp.keys"]


def _retire_after(store: KeyStore, infos: tuple[KeyInfo, ...]) -> datetime | None:
    """When the active key is due to be retired (None without an active and a next key)."""
    by_state = {info.state: info for info in infos}
    if ACTIVE in by_state and NEXT in by_state:
        return store.policy.rotation_due_at(by_state[ACTIVE], by_state[NEXT])
    return None


def key_view(store: KeyStore, info: KeyInfo, infos: tuple[KeyInfo, ...]) -> dict:
    return {
        "kid": info.kid,
        "state": info.state,
        "created_at": info.created_at,
        "activated_at": info.activated_at,
        "retired_at": info.retired_at,
        "retire_after": _retire_after(store, infos) if info.state == ACTIVE else None,
        "prune_after": store.policy.removable_at(info) if info.state == RETIRED else None,
    }


def _when(moment: datetime | None) -> str:
    return moment.isoformat(sep=" ", timespec="seconds") + "Z" if moment else "-"


@keys.command("list")
@json_option
def keys_list(as_json):
    """List the keys (active, next, then retired, newest first): kid, state, created,
    activated, retire-after (the active key's scheduled rotation) or prune-after (a retired
    key's removal). UTC."""
    store = _store()
    infos = store.key_list()
    views = [key_view(store, info, infos)
             for info in sorted(infos, key=lambda info: JWKS_ORDER[info.state])]
    header = "kid\tstate\tcreated\tactivated\tretire-after\tprune-after"
    rows = ["\t".join([v["kid"], v["state"], _when(v["created_at"]), _when(v["activated_at"]),
                       _when(v["retire_after"]), _when(v["prune_after"])]) for v in views]
    emit(views, as_json, "\n".join([header, *rows]))


@keys.command("rotate")
@click.option("--force", is_flag=True,
              help="Even if the next key is too new: relying parties holding a cached JWKS "
                   "without it reject the new tokens until they fetch it again.")
@click.option("--if-due", is_flag=True,
              help="Only if the rotation period has passed (for cron; KEY_AUTO_ROTATE=false).")
@json_option
def keys_rotate(force, if_due, as_json):
    """The next key signs, the active key is retired, a new next key is published."""
    if force and if_due:
        raise click.UsageError("give --force or --if-due, not both")
    store = _store()
    try:
        rotation = store.rotate_if_due() if if_due else store.rotate(force=force)
    except RotationError as exc:
        raise click.ClickException(str(exc)) from None
    if rotation is None:
        due = _retire_after(store, store.key_list())
        emit({"rotated": False, "due_at": due}, as_json, f"not due until {_when(due)}")
        return
    emit({"rotated": True, **rotation._asdict()}, as_json,
         f"{rotation.activated} signs now; {rotation.retired} retired (published until its "
         f"tokens have expired); {rotation.published} published as the next key")


@keys.command("prune")
@json_option
def keys_prune(as_json):
    """Delete retired keys whose tokens can no longer be alive; safe from cron on any host."""
    removed = _store().prune()
    emit({"pruned": removed}, as_json,
         "\n".join(f"pruned {kid}" for kid in removed) or "nothing to prune")


@keys.command("reseal")
@json_option
def keys_reseal(as_json):
    """Encrypt every key under IDP_KEYS_PASSPHRASE after changing it. Before: every host has
    the new passphrase there and the old one in IDP_KEYS_PREVIOUS_PASSPHRASE. After: remove
    IDP_KEYS_PREVIOUS_PASSPHRASE."""
    try:
        resealed = reseal(_store().policy)
    except ConfigError as exc:  # a row changed since start-up to one neither passphrase opens
        raise click.ClickException(str(exc)) from None
    emit({"resealed": resealed}, as_json,
         "\n".join(f"resealed {kid}" for kid in resealed)
         or "every key is already sealed under IDP_KEYS_PASSPHRASE")
