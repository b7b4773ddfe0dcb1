"""Glance v2 routes: discovery, images (create, list, show, patch, delete, upload, download, deactivate),
tags, members, tasks, import info, and the image and member schemas (metadefs: metadef_routes).

The show body is the bare image object (no wrapper key); extra properties are top-level keys, as in
Glance. Unknown list query parameters filter on those properties, as Glance does.
"""

from __future__ import annotations

import re
from typing import Any

from openstack_fakecloud.errors import BadRequest, CloudError, Forbidden, NotFound
from openstack_fakecloud.framework import Collection, Reply, RequestContext
from openstack_fakecloud.image import metadef_routes  # noqa: F401 (its import registers the metadefs routes on `service`)
from openstack_fakecloud.image.backend import MAX_IMAGE_BYTES, Change, Image, NewImage
from openstack_fakecloud.image.service import service
from openstack_fakecloud.image.views import image_view, member_view, task_view

__all__ = ["service"]

UPLOAD_OP = "image.upload"


class UnsupportedMediaType(CloudError):
    status = 415


CURRENT = "2.16"

_LIST_CONTROL = frozenset({"limit", "marker", "sort_key", "sort_dir", "sort", "member_status"})
_ATTR_FILTERS = {
    "name": "name", "id": "id", "status": "status", "owner": "owner", "container_format": "container_format",
    "disk_format": "disk_format", "size": "size", "min_disk": "min_disk", "min_ram": "min_ram",
    "checksum": "checksum", "os_hash_value": "os_hash_value",
}


# discovery ------------------------------------------------------------------------------------
def _versions(ctx: RequestContext) -> dict[str, Any]:
    href = ctx.url("/image/v2/")
    minors = range(int(CURRENT.split(".")[1]), -1, -1)
    return {"versions": [
        {"id": f"v2.{minor}", "status": "CURRENT" if f"2.{minor}" == CURRENT else "SUPPORTED",
         "links": [{"rel": "self", "href": href}]}
        for minor in minors
    ]}


@service.route("", "GET", op="versions", auth=False)
@service.route("/", "GET", op="versions", auth=False)
def versions(ctx: RequestContext) -> Reply:
    return Reply(300, _versions(ctx))


@service.route("/versions", "GET", op="versions", auth=False)
def versions_ok(ctx: RequestContext) -> Reply:
    return Reply(200, _versions(ctx))


# images ---------------------------------------------------------------------------------------
def _matches(wanted: str, value: Any) -> bool:
    if wanted.startswith("in:"):
        return str(value) in {item.strip().strip('"') for item in wanted[3:].split(",")}
    if isinstance(value, bool):
        return wanted.lower() == ("true" if value else "false")
    return str(value) == wanted


def _filtered(images: list[Image], query: Any) -> list[Image]:
    result = []
    for image in images:
        view = image_view(image)
        ok = True
        for key in query:
            if key in _LIST_CONTROL:
                continue
            value = query.get(key)
            if key == "visibility":
                ok = value == "all" or image.visibility == value
            elif key == "os_hidden":
                ok = _matches(value, image.hidden)
            elif key == "protected":
                ok = _matches(value, image.protected)
            elif key in ("size_min", "size_max"):
                if not value.isdigit():
                    raise BadRequest(f"Invalid value for {key}: {value!r}.")
                ok = image.size >= int(value) if key == "size_min" else image.size <= int(value)
            elif key == "tag":
                ok = all(tag in image.tags for tag in query.getlist("tag"))
            elif key in _ATTR_FILTERS:
                ok = _matches(value, view[_ATTR_FILTERS[key]])
            else:  # Glance filters on extra properties by their name
                ok = key in image.properties and _matches(value, image.properties[key])
            if not ok:
                break
        if ok and (image.hidden is False or "os_hidden" in query):
            result.append(image)
    return result


def _parse_limit(raw: str) -> int:
    if not raw.isdigit():
        raise BadRequest("limit param must be an integer")
    return int(raw)


# fakecloud's Glance paging: a bare `next`, relative, carrying only the marker and the limit (as it always has;
# real Glance also repeats the request's filters), linked only when more images follow.
IMAGES: Collection[Image] = Collection(
    "images", _parse_limit,
    unknown_marker=lambda marker: BadRequest(f"Marker {marker} could not be found."),
    next_href=lambda ctx, marker, limit: f"/v2/images?marker={marker}&limit={limit}",
    link="next",
)


_SORT_KEYS = frozenset({"name", "status", "container_format", "disk_format", "size", "id", "created_at",
                        "updated_at", "min_disk", "min_ram", "visibility", "owner", "virtual_size"})


def _sort_order(query: Any) -> list[tuple[str, str]]:
    """(key, direction) pairs from `sort=k1:dir,k2` or `sort_key`/`sort_dir` (Glance: desc unless told)."""
    if "sort" in query:
        if "sort_key" in query or "sort_dir" in query:
            raise BadRequest("The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'.")
        pairs = []
        for item in query["sort"].split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key, direction or "desc"))
    else:
        keys = query.getlist("sort_key") or ["created_at"]
        dirs = query.getlist("sort_dir") or ["desc"]
        pairs = [(key, dirs[i] if i < len(dirs) else dirs[-1]) for i, key in enumerate(keys)]
    for key, direction in pairs:
        if key not in _SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {key}. It is not in the list of allowed sort keys.")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {direction}")
    return pairs


def _sorted(images: list[Image], pairs: list[tuple[str, str]]) -> list[Image]:
    """Sort by each key in turn (stable sorts from the last key back), nulls first as in Glance's SQL."""
    images = sorted(images, key=lambda i: i.id, reverse=pairs[0][1] == "desc")
    for key, direction in reversed(pairs):
        def by(image: Image, key: str = key) -> tuple[bool, Any]:
            value = image_view(image).get(key)
            return (value is not None, value if value is not None else 0)
        images.sort(key=by, reverse=direction == "desc")
    return images


@service.route("/v2/images", "GET", op="image.list")
def list_images(ctx: RequestContext) -> Reply:
    member_status = ctx.query.get("member_status", "accepted")
    if member_status not in ("pending", "accepted", "rejected", "all"):
        raise BadRequest(f"Invalid status value: {member_status}")
    images = _filtered(ctx.cloud.image.visible_images(ctx.project_id, ctx.is_admin, member_status), ctx.query)
    images = _sorted(images, _sort_order(ctx.query))
    page, links = IMAGES.page(ctx, images)
    return Reply(200, {"schema": "/v2/schemas/images", "first": "/v2/images", **links,
                       "images": [image_view(i) for i in page]})


@service.route("/v2/images/", "GET", "DELETE", "PATCH", op="image.show")
def no_image_id(ctx: RequestContext) -> Reply:
    """`/v2/images/` names no image: Glance answers 404 (the router would otherwise redirect to the list)."""
    raise NotFound("The resource could not be found.")


@service.route("/v2/images/{id}", "GET", op="image.show")
def show_image(ctx: RequestContext) -> Reply:
    return Reply(200, image_view(ctx.cloud.image.visible_image(ctx.path["id"], ctx.project_id, ctx.is_admin)))


# writing images -------------------------------------------------------------------------------------
_UUID = re.compile(IMAGE_ID_PATTERN := r"^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-"
                                       r"([0-9a-fA-F]){12}$")
_READ_ONLY = frozenset({"created_at", "updated_at", "status", "checksum", "os_hash_algo", "os_hash_value", "size",
                        "virtual_size", "direct_url", "self", "file", "schema", "stores"})
_RESERVED = frozenset({"location", "locations", "deleted", "deleted_at"})
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("community", "public", "private", "shared")


def _invalid(message: str) -> BadRequest:
    return BadRequest(f"Provided object does not match schema 'image': {message}")


def _check_writable(key: str) -> None:
    if key in _READ_ONLY:
        raise Forbidden(f"Attribute '{key}' is read-only.")
    if key in _RESERVED or key.startswith("os_glance"):  # Glance keeps os_glance_* for itself (since Xena)
        raise Forbidden(f"Attribute '{key}' is reserved.")


def _field(key: str, value: Any) -> Any:
    """One image field checked against Glance's image schema (an extra property must be a string)."""
    if key == "name" or key == "owner":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise _invalid(f"{value!r} is not a string of at most 255 characters ({key})")
    elif key == "id":
        if not isinstance(value, str) or not _UUID.match(value):
            raise _invalid(f"{value!r} does not match '{IMAGE_ID_PATTERN}' (id)")
    elif key in ("disk_format", "container_format"):
        allowed = DISK_FORMATS if key == "disk_format" else CONTAINER_FORMATS
        if value is not None and value not in allowed:
            raise _invalid(f"{value!r} is not one of {[None, *allowed]} ({key})")
    elif key == "visibility":
        if value not in VISIBILITIES:
            raise _invalid(f"{value!r} is not one of {list(VISIBILITIES)} (visibility)")
    elif key in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise _invalid(f"{value!r} is not of type 'boolean' ({key})")
    elif key in ("min_disk", "min_ram"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _invalid(f"{value!r} is not a non-negative integer ({key})")
    elif key == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) and len(t) <= 255 for t in value):
            raise _invalid(f"{value!r} is not an array of strings (tags)")
    elif not isinstance(value, str):
        raise _invalid(f"{value!r} is not of type 'string' ({key})")
    return value


def parse_new_image(body: Any) -> NewImage:
    """A `POST /v2/images` body as a NewImage; unknown keys become extra string properties."""
    if not isinstance(body, dict):
        raise BadRequest("Body expected in request.")
    new = NewImage()
    for key, value in body.items():
        _check_writable(key)
        _field(key, value)
        if key == "os_hidden":
            new.hidden = value
        elif key in ("id", "name", "disk_format", "container_format", "visibility", "protected", "min_disk",
                     "min_ram", "owner", "tags"):
            setattr(new, key, value)
        else:
            new.properties[key] = value
    return new


PATCH_TYPES = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")


def _v20_operation(raw: dict[str, Any]) -> dict[str, Any]:
    """The v2.0 patch form names the operation as the key of the pointer: `{"replace": "/name", "value": x}`."""
    ops = [op for op in ("add", "replace", "remove") if op in raw]
    if len(ops) != 1:
        raise BadRequest("Operation objects must contain exactly one member named \"add\", \"remove\", or "
                         "\"replace\".")
    converted = {"op": ops[0], "path": raw[ops[0]]}
    if "value" in raw:
        converted["value"] = raw["value"]
    return converted


def parse_patch(ctx: RequestContext) -> list[Change]:
    """A json-patch (Glance's limited form: one-segment pointers) as Changes, checked before any applies."""
    content_type = ctx.request.headers.get("content-type", "").split(";")[0].strip()
    if content_type not in PATCH_TYPES:
        raise UnsupportedMediaType(f"Unsupported Content-Type; use {PATCH_TYPES[0]}.")
    if not isinstance(ctx.body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in ctx.body:
        if not isinstance(raw, dict):
            raise BadRequest("Operations must be JSON objects.")
        if content_type == PATCH_TYPES[1] and "op" not in raw:
            raw = _v20_operation(raw)
        op = raw.get("op")
        if op not in ("add", "replace", "remove"):
            raise BadRequest(f"Invalid operation: `{op}`.")
        pointer = raw.get("path")
        if not isinstance(pointer, str):
            raise BadRequest("Unable to find 'path' in JSON Schema change")
        if not pointer.startswith("/"):
            raise BadRequest(f'Pointer `{pointer}` does not start with "/".')
        if pointer.endswith("/") or "/" in pointer[1:]:
            raise BadRequest(f"Invalid JSON pointer for this resource: '{pointer}'")
        path = pointer[1:].replace("~1", "/").replace("~0", "~")
        _check_writable(path)
        if op == "remove":
            changes.append(Change(op, path))
            continue
        if "value" not in raw:
            raise BadRequest(f'Operation "{op}" requires a member named "value".')
        if path == "id":
            raise Forbidden("Attribute 'id' is read-only.")
        changes.append(Change(op, path, _field(path, raw["value"])))
    return changes


@service.route("/v2/images", "POST", op="image.create")
def create_image(ctx: RequestContext) -> Reply:
    image = ctx.cloud.image.create_image(parse_new_image(ctx.body), ctx.project_id, ctx.is_admin)
    return Reply(201, image_view(image), headers={"Location": ctx.url(f"/image/v2/images/{image.id}")})


@service.route("/v2/images/{id}", "PATCH", op="image.update")
def update_image(ctx: RequestContext) -> Reply:
    changes = parse_patch(ctx)
    image = ctx.cloud.image.update_image(ctx.path["id"], changes, ctx.project_id, ctx.is_admin)
    return Reply(200, image_view(image))


@service.route("/v2/images/{id}", "DELETE", op="image.delete")
def delete_image(ctx: RequestContext) -> Reply:
    ctx.cloud.image.delete_image(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return Reply(204)


@service.route("/v2/images/{id}/file", "PUT", op=UPLOAD_OP, max_bytes=MAX_IMAGE_BYTES)
def upload_image(ctx: RequestContext) -> Reply:
    content_type = ctx.request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/octet-stream":
        raise UnsupportedMediaType(f"Content-Type {content_type or 'none'} is not supported; "
                                   "upload with application/octet-stream.")
    data = ctx.body
    ctx.cloud.image.upload(ctx.path["id"], data, ctx.project_id, ctx.is_admin)
    return Reply(204)


@service.route("/v2/images/{id}/file", "GET", op="image.download")
def download_image(ctx: RequestContext) -> Reply:
    image, data = ctx.cloud.image.download(ctx.path["id"], ctx.project_id, ctx.is_admin)
    if data is None:
        return Reply(204)
    return Reply(200, raw=data, content_type="application/octet-stream",
                 headers={"Content-MD5": image.checksum or ""})


@service.route("/v2/images/{id}/actions/deactivate", "POST", op="image.deactivate")
def deactivate_image(ctx: RequestContext) -> Reply:
    ctx.cloud.image.set_active(ctx.path["id"], False, ctx.project_id, ctx.is_admin)
    return Reply(204)


@service.route("/v2/images/{id}/actions/reactivate", "POST", op="image.reactivate")
def reactivate_image(ctx: RequestContext) -> Reply:
    ctx.cloud.image.set_active(ctx.path["id"], True, ctx.project_id, ctx.is_admin)
    return Reply(204)


# tags and members -------------------------------------------------------------------------------------
@service.route("/v2/images/{id}/tags/{tag}", "PUT", op="image.tag.add")
def add_tag(ctx: RequestContext) -> Reply:
    ctx.cloud.image.add_tag(ctx.path["id"], ctx.path["tag"], ctx.project_id, ctx.is_admin)
    return Reply(204)


@service.route("/v2/images/{id}/tags/{tag}", "DELETE", op="image.tag.delete")
def delete_tag(ctx: RequestContext) -> Reply:
    ctx.cloud.image.delete_tag(ctx.path["id"], ctx.path["tag"], ctx.project_id, ctx.is_admin)
    return Reply(204)


@service.route("/v2/images/{id}/members", "GET", op="image.member.list")
def list_members(ctx: RequestContext) -> Reply:
    members = ctx.cloud.image.list_members(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return Reply(200, {"members": [member_view(m) for m in members], "schema": "/v2/schemas/members"})


@service.route("/v2/images/{id}/members", "POST", op="image.member.create")
def add_member(ctx: RequestContext) -> Reply:
    member_id = ctx.body.get("member") if isinstance(ctx.body, dict) else None
    if not isinstance(member_id, str) or not member_id:
        raise BadRequest("Member to be added not specified")
    member = ctx.cloud.image.add_member(ctx.path["id"], member_id, ctx.project_id, ctx.is_admin)
    return Reply(200, member_view(member))


@service.route("/v2/images/{id}/members/{member}", "GET", op="image.member.show")
def show_member(ctx: RequestContext) -> Reply:
    member = ctx.cloud.image.get_member(ctx.path["id"], ctx.path["member"], ctx.project_id, ctx.is_admin)
    return Reply(200, member_view(member))


@service.route("/v2/images/{id}/members/{member}", "PUT", op="image.member.update")
def update_member(ctx: RequestContext) -> Reply:
    status = ctx.body.get("status") if isinstance(ctx.body, dict) else None
    if not isinstance(status, str):
        raise BadRequest("Status not specified")
    member = ctx.cloud.image.set_member_status(ctx.path["id"], ctx.path["member"], status, ctx.project_id,
                                               ctx.is_admin)
    return Reply(200, member_view(member))


@service.route("/v2/images/{id}/members/{member}", "DELETE", op="image.member.delete")
def delete_member(ctx: RequestContext) -> Reply:
    ctx.cloud.image.delete_member(ctx.path["id"], ctx.path["member"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# tasks and import info -------------------------------------------------------------------------
@service.route("/v2/tasks", "POST", op="task.create")
def create_task(ctx: RequestContext) -> Reply:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    task_type, task_input = body.get("type"), body.get("input")
    if task_type != "import":
        raise BadRequest(f"Provided object does not match schema 'task': {task_type!r} is not one of ['import']")
    if not isinstance(task_input, dict):
        raise BadRequest("Provided object does not match schema 'task': 'input' is a required property")
    for key in ("import_from", "import_from_format", "image_properties"):
        if key not in task_input:
            raise BadRequest(f"Invalid value for option {key}: it is a required input of an import task.")
    backend = ctx.cloud.image
    task = backend.create_task(task_type, task_input, ctx.project_id, ctx.is_admin)
    view = task_view(task)
    backend.run_task(task)
    return Reply(201, view, headers={"Location": ctx.url(f"/image/v2/tasks/{task.id}")})


@service.route("/v2/tasks", "GET", op="task.list")
def list_tasks(ctx: RequestContext) -> Reply:
    tasks = ctx.cloud.image.list_tasks(ctx.project_id, ctx.is_admin)
    tasks.sort(key=lambda t: (t.created_at, t.id), reverse=True)
    return Reply(200, {"tasks": [task_view(t, summary=True) for t in tasks], "first": "/v2/tasks",
                       "schema": "/v2/schemas/tasks"})


@service.route("/v2/tasks/{id}", "GET", op="task.show")
def show_task(ctx: RequestContext) -> Reply:
    return Reply(200, task_view(ctx.cloud.image.get_task(ctx.path["id"], ctx.project_id, ctx.is_admin)))


@service.route("/v2/info/import", "GET", op="info.import")
def import_info(ctx: RequestContext) -> Reply:
    """No interoperable import method is enabled: fakecloud takes image data only by upload (PUT .../file)."""
    return Reply(200, {"import-methods": {"description": "Import methods available.", "type": "array",
                                          "value": []}})


# schemas --------------------------------------------------------------------------------------
def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


IMAGE_PROPERTIES: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "description": "An identifier for the image", "readOnly": True,
           "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
    "name": _nullable("string", description="Descriptive name for the image", maxLength=255),
    "status": {"type": "string", "readOnly": True, "description": "Status of the image",
               "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
                        "pending_delete", "deactivated"]},
    "visibility": {"type": "string", "description": "Scope of image accessibility",
                   "enum": ["community", "public", "private", "shared"]},
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list "
                                                    "response."},
    "checksum": _nullable("string", readOnly=True, maxLength=32, description="md5 hash of image contents."),
    "os_hash_algo": _nullable("string", readOnly=True, maxLength=64, description="Algorithm of os_hash_value"),
    "os_hash_value": _nullable("string", readOnly=True, maxLength=128, description="Secure hash of the image"),
    "owner": _nullable("string", maxLength=255, description="Owner of the image"),
    "size": _nullable("integer", readOnly=True, description="Size of image file in bytes"),
    "virtual_size": _nullable("integer", readOnly=True, description="Virtual size of image in bytes"),
    "container_format": _nullable("string", description="Format of the container",
                                  enum=[None, "ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]),
    "disk_format": _nullable("string", description="Format of the disk",
                             enum=[None, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                                   "ploop"]),
    "created_at": {"type": "string", "readOnly": True, "description": "Date and time of image registration"},
    "updated_at": {"type": "string", "readOnly": True, "description": "Date and time of the last image "
                                                                      "modification"},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
             "description": "List of strings related to the image"},
    "direct_url": {"type": "string", "readOnly": True, "description": "URL to access the image file kept in "
                                                                      "external store"},
    "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
    "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
    "self": {"type": "string", "readOnly": True, "description": "An image self url"},
    "file": {"type": "string", "readOnly": True, "description": "An image file url"},
    "stores": {"type": "string", "readOnly": True, "description": "Store in which image data resides."},
    "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
    "locations": {"type": "array", "items": {"type": "object", "properties": {
        "url": {"type": "string", "maxLength": 255}, "metadata": {"type": "object"}},
        "required": ["url", "metadata"]}, "description": "A set of URLs to access the image file kept in "
                                                         "external store"},
    "kernel_id": _nullable("string", description="ID of image stored in Glance that should be used as the kernel "
                                                 "when booting an AMI-style image."),
    "ramdisk_id": _nullable("string", description="ID of image stored in Glance that should be used as the "
                                                  "ramdisk when booting an AMI-style image."),
    "instance_uuid": {"type": "string", "description": "Metadata which can be used to record which instance this "
                                                       "image is associated with."},
    "architecture": {"type": "string", "description": "Operating system architecture."},
    "os_distro": {"type": "string", "description": "Common name of operating system distribution."},
    "os_version": {"type": "string", "description": "Operating system version as specified by the distributor."},
}

IMAGE_LINKS = [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
               {"rel": "describedby", "href": "{schema}"}]


def image_schema() -> dict[str, Any]:
    return {"name": "image", "properties": IMAGE_PROPERTIES, "additionalProperties": {"type": "string"},
            "links": IMAGE_LINKS}


@service.route("/v2/schemas/image", "GET", op="schema.image")
def show_image_schema(ctx: RequestContext) -> Reply:
    return Reply(200, image_schema())


@service.route("/v2/schemas/images", "GET", op="schema.images")
def show_images_schema(ctx: RequestContext) -> Reply:
    return Reply(200, {
        "name": "images",
        "properties": {"images": {"type": "array", "items": image_schema()}, "schema": {"type": "string"},
                       "first": {"type": "string"}, "next": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    })


MEMBER_PROPERTIES: dict[str, dict[str, Any]] = {
    "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
    "image_id": {"type": "string", "description": "An identifier for the image", "pattern": IMAGE_ID_PATTERN},
    "created_at": {"type": "string", "description": "Date and time of image member creation"},
    "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
    "status": {"type": "string", "description": "The status of this image member",
               "enum": ["pending", "accepted", "rejected"]},
    "schema": {"type": "string", "readOnly": True},
}


def member_schema() -> dict[str, Any]:
    return {"name": "member", "properties": MEMBER_PROPERTIES}


@service.route("/v2/schemas/member", "GET", op="schema.member")
def show_member_schema(ctx: RequestContext) -> Reply:
    return Reply(200, member_schema())


@service.route("/v2/schemas/members", "GET", op="schema.members")
def show_members_schema(ctx: RequestContext) -> Reply:
    return Reply(200, {"name": "members",
                       "properties": {"members": {"type": "array", "items": member_schema()},
                                      "schema": {"type": "string"}},
                       "links": [{"rel": "describedby", "href": "{schema}"}]})
