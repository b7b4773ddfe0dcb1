"""Glance v2 routes: discovery, image list and show, and the schemas glanceclient and Heat read.

The show body is the bare image object (no wrapper key); extra properties are top-level keys, as in
Glance. Unknown list query parameters filter on those properties, as Glance does.
"""

from __future__ import annotations

from typing import Any

from fakecloud.errors import BadRequest, NotFound
from fakecloud.framework import Collection, Reply, RequestContext, Service
from fakecloud.image.backend import Image
from fakecloud.image.views import image_view

service = Service("image", "/image", error_style="glance")

CURRENT = "2.16"

_LIST_CONTROL = frozenset({"limit", "marker", "sort_key", "sort_dir", "sort", "member_status"})
_ATTR_FILTERS = {
    "name": "name", "id": "id", "status": "status", "owner": "owner", "container_format": "container_format",
    "disk_format": "disk_format",
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


@service.route("/v2/images", "GET", op="image.list")
def list_images(ctx: RequestContext) -> Reply:
    images = _filtered(ctx.cloud.image.visible_images(ctx.project_id, ctx.is_admin), ctx.query)
    sort_key = ctx.query.get("sort_key", "created_at")
    reverse = ctx.query.get("sort_dir", "desc") == "desc"
    images.sort(key=lambda i: (str(image_view(i).get(sort_key, "")), i.id), reverse=reverse)
    page, links = IMAGES.page(ctx, images)
    return Reply(200, {"schema": "/v2/schemas/images", "first": "/v2/images", **links,
                       "images": [image_view(i) for i in page]})


@service.route("/v2/images/{id}", "GET", op="image.show")
def show_image(ctx: RequestContext) -> Reply:
    image = ctx.cloud.image.get_image(ctx.path["id"])
    if image not in ctx.cloud.image.visible_images(ctx.project_id, ctx.is_admin):
        raise NotFound(f"No image found with ID {image.id}")
    return Reply(200, image_view(image))


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
