"""Cinder's volume transfers (`os-volume-transfer`, and `volume-transfers` from 3.55) and user messages (3.3).

A transfer hands a volume to whichever project presents its id and auth key; until then the volume waits in
`awaiting-transfer`. A user message records why an asynchronous request failed (a volume no backend fits).
"""

from __future__ import annotations

from openstack_fakecloud.errors import BadRequest
from openstack_fakecloud.framework import Handler, Reply, RequestContext
from openstack_fakecloud.volume import views
from openstack_fakecloud.volume.api import backend, base, body_dict, require_version, route, scope, truthy


def _version(ctx: RequestContext) -> tuple[int, int]:
    return ctx.microversion or (3, 0)


def _create(ctx: RequestContext) -> Reply:
    spec = body_dict(ctx, "transfer")
    volume_id = spec.get("volume_id")
    if not volume_id:
        raise BadRequest("Invalid input for field/attribute transfer. 'volume_id' is a required property")
    no_snapshots = truthy(spec.get("no_snapshots", False)) if ctx.at_least("3.55") else False
    transfer = backend(ctx).create_transfer(str(volume_id), ctx.project_id, spec.get("name"), no_snapshots)
    return Reply(202, {"transfer": views.transfer(transfer, base(ctx, ctx.project_id), _version(ctx),
                                                  auth_key=True)})


def _list(ctx: RequestContext, detail: bool) -> Reply:
    project = None if ctx.all_projects() else ctx.project_id
    items = [views.transfer(t, base(ctx, t.source_project_id), _version(ctx), detail)
             for t in backend(ctx).list_transfers(project)]
    return Reply(200, {"transfers": items})


def _show(ctx: RequestContext) -> Reply:
    transfer = backend(ctx).get_transfer(ctx.path["id"], scope(ctx))
    return Reply(200, {"transfer": views.transfer(transfer, base(ctx, transfer.source_project_id), _version(ctx))})


def _delete(ctx: RequestContext) -> Reply:
    backend(ctx).delete_transfer(ctx.path["id"], scope(ctx))
    return Reply(202)


def _accept(ctx: RequestContext) -> Reply:
    spec = body_dict(ctx, "accept")
    if not spec.get("auth_key"):
        raise BadRequest("Invalid input for field/attribute accept. 'auth_key' is a required property")
    transfer = backend(ctx).accept_transfer(ctx.path["id"], spec["auth_key"], ctx.project_id, ctx.token.user_id)
    view = views.transfer(transfer, base(ctx, ctx.project_id), _version(ctx), detail=False)
    return Reply(202, {"transfer": view})


def _same(handler: Handler) -> Handler:
    return handler


def _newer(handler: Handler) -> Handler:
    """The same handler under `volume-transfers`, which exists from 3.55 only."""

    def guarded(ctx: RequestContext) -> Reply:
        require_version(ctx, "3.55")
        return handler(ctx)

    guarded.__doc__ = handler.__doc__
    return guarded


for _prefix, _wrap in (("/os-volume-transfer", _same), ("/volume-transfers", _newer)):
    route(_prefix, "POST", op="transfer.create")(_wrap(_create))
    route(_prefix, "GET", op="transfer.list")(_wrap(lambda ctx: _list(ctx, detail=False)))
    route(_prefix + "/detail", "GET", op="transfer.list")(_wrap(lambda ctx: _list(ctx, detail=True)))
    route(_prefix + "/{id}", "GET", op="transfer.show")(_wrap(_show))
    route(_prefix + "/{id}", "DELETE", op="transfer.delete")(_wrap(_delete))
    route(_prefix + "/{id}/accept", "POST", op="transfer.accept")(_wrap(_accept))


# user messages -------------------------------------------------------------------------------------------
@route("/messages", "GET", op="message.list")
def list_messages(ctx: RequestContext) -> Reply:
    require_version(ctx, "3.3")
    items = backend(ctx).list_messages(scope(ctx))
    return Reply(200, {"messages": [views.message(m, base(ctx, m.project_id)) for m in items]})


@route("/messages/{id}", "GET", op="message.show")
def show_message(ctx: RequestContext) -> Reply:
    require_version(ctx, "3.3")
    item = backend(ctx).get_message(ctx.path["id"], scope(ctx))
    return Reply(200, {"message": views.message(item, base(ctx, item.project_id))})


@route("/messages/{id}", "DELETE", op="message.delete")
def delete_message(ctx: RequestContext) -> Reply:
    require_version(ctx, "3.3")
    backend(ctx).delete_message(ctx.path["id"], scope(ctx))
    return Reply(204)
