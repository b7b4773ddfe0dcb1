"""Glance v2 over real HTTP: discovery, list filters and paging, show, find by name, schemas."""

import hashlib
import json
import uuid

import openstack.exceptions
import pytest
import requests

from openstack_fakecloud.identity.backend import stable_id

# openstacksdk's Image.find (openstack/image/v2/image.py) always searches with ignore_missing=True first, and its
# create_image looks the name up through it: find_image and create_image warn (RemovedInSDK60Warning) whatever
# their caller passes. Not ours to fix; every other warning still counts here.
pytestmark = pytest.mark.filterwarnings("ignore:The ignore_missing parameter of all find_")


def _get(conn, fakecloud, path, **params):
    headers = {"X-Auth-Token": conn.session.get_token()}
    return requests.get(fakecloud.url + "/image" + path, headers=headers, params=params, timeout=10)


def test_versions_document(fakecloud):
    for path in ("/image", "/image/"):
        response = requests.get(fakecloud.url + path, timeout=10)
        assert response.status_code == 300
        current = [v for v in response.json()["versions"] if v["status"] == "CURRENT"]
        assert current[0]["id"].startswith("v2.") and current[0]["links"][0]["href"].endswith("/image/v2/")


def test_seeded_images_with_stable_ids(os_conn):
    images = {i.name: i for i in os_conn.image.images()}
    assert {"postgresql-16", "mysql-8.0", "cirros-0.6.2"} <= set(images)
    postgres = images["postgresql-16"]
    assert postgres.id == str(uuid.UUID(stable_id("image", "postgresql-16")))
    assert (postgres.status, postgres.visibility, postgres.min_disk) == ("active", "public", 1)
    assert postgres.properties["datastore"] == "postgresql"


def test_find_by_name_and_get_by_id(os_conn, fakecloud):
    image = os_conn.image.find_image("postgresql-16", ignore_missing=False)
    assert image.name == "postgresql-16"
    assert os_conn.image.get_image(image.id).id == image.id
    raw = _get(os_conn, fakecloud, f"/v2/images/{image.id}").json()
    assert raw["id"] == image.id and "image" not in raw  # bare object, no wrapper
    assert raw["datastore"] == "postgresql" and raw["version"] == "16"  # extra properties are top-level
    assert _get(os_conn, fakecloud, "/v2/images/postgresql-16").status_code == 404
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.image.get_image(str(uuid.uuid4()))
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.image.find_image("no-such-image", ignore_missing=False)


def test_id_in_and_other_filters(os_conn, fakecloud):
    ids = {i.name: i.id for i in os_conn.image.images()}
    wanted = [ids["mysql-8.0"], ids["cirros-0.6.2"]]
    listed = _get(os_conn, fakecloud, "/v2/images", id="in:" + ",".join(wanted)).json()["images"]
    assert sorted(i["id"] for i in listed) == sorted(wanted)
    assert [i["name"] for i in _get(os_conn, fakecloud, "/v2/images", name="mysql-8.0").json()["images"]] == [
        "mysql-8.0"]
    by_property = _get(os_conn, fakecloud, "/v2/images", datastore="mysql").json()["images"]
    assert [i["name"] for i in by_property] == ["mysql-8.0"]
    assert len(list(os_conn.image.images(status="active", visibility="public"))) == 4
    assert list(os_conn.image.images(status="queued")) == []


def test_paging_with_next_link(os_conn, fakecloud):
    first = _get(os_conn, fakecloud, "/v2/images", limit=2).json()
    # fakecloud's Glance next link: relative, the marker of the page's last image and the limit.
    assert len(first["images"]) == 2
    assert first["next"] == f"/v2/images?marker={first['images'][-1]['id']}&limit=2"
    rest = _get(os_conn, fakecloud, "/v2/images", limit=2, marker=first["images"][-1]["id"]).json()
    assert len(rest["images"]) == 2 and "next" not in rest
    paged = [i.name for i in os_conn.image.images(limit=1)]
    assert sorted(paged) == ["cirros-0.6.2", "mysql-8.0", "postgresql-16", "postgresql-16-guest"]


def test_schemas(os_conn, fakecloud):
    schema = _get(os_conn, fakecloud, "/v2/schemas/image").json()
    assert schema["name"] == "image"
    assert schema["additionalProperties"] == {"type": "string"}
    assert schema["properties"]["min_disk"]["type"] == "integer"
    assert schema["properties"]["visibility"]["enum"]
    images = _get(os_conn, fakecloud, "/v2/schemas/images").json()
    assert images["properties"]["images"]["items"]["name"] == "image"


# writable Glance ----------------------------------------------------------------------------------
def _raw(conn, fakecloud, method, path, **kwargs):
    headers = {"X-Auth-Token": conn.session.get_token(), **kwargs.pop("headers", {})}
    return requests.request(method, fakecloud.url + "/image" + path, headers=headers, timeout=10, **kwargs)


PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


def test_create_upload_download_roundtrip(os_conn, fakecloud):
    image = os_conn.image.create_image(name="custom", disk_format="raw", container_format="bare",
                                       min_disk=2, tags=["a", "b"], properties={"purpose": "test"})
    assert (image.status, image.visibility, image.min_disk) == ("queued", "shared", 2)
    assert image.size is None and image.checksum is None and sorted(image.tags) == ["a", "b"]
    assert _raw(os_conn, fakecloud, "GET", f"/v2/images/{image.id}/file").status_code == 204
    payload = b"fakecloud image bytes" * 100
    image.data = payload
    image.upload(os_conn.image)
    uploaded = os_conn.image.get_image(image.id)
    assert (uploaded.status, uploaded.size) == ("active", len(payload))
    assert uploaded.checksum == hashlib.md5(payload, usedforsecurity=False).hexdigest()
    assert (uploaded.hash_algo, uploaded.hash_value) == ("sha512", hashlib.sha512(payload).hexdigest())
    assert uploaded.properties["purpose"] == "test"
    assert os_conn.image.download_image(uploaded).content == payload
    raw = _raw(os_conn, fakecloud, "GET", f"/v2/images/{image.id}/file")
    assert raw.headers["Content-Type"] == "application/octet-stream" and raw.content == payload
    assert fakecloud.cloud.image.data[image.id] == payload
    again = _raw(os_conn, fakecloud, "PUT", f"/v2/images/{image.id}/file", data=b"x",
                 headers={"Content-Type": "application/octet-stream"})
    assert again.status_code == 409


def test_create_errors(os_conn, os_admin, fakecloud):
    def post(conn, body):
        return _raw(conn, fakecloud, "POST", "/v2/images", json=body)

    created = post(os_conn, {"name": "x", "id": "11111111-2222-3333-4444-555555555555"})
    assert created.status_code == 201 and created.headers["Location"].endswith(created.json()["id"])
    assert created.json()["owner"] == os_conn.current_project_id
    assert post(os_conn, {"id": "11111111-2222-3333-4444-555555555555"}).status_code == 409
    assert post(os_conn, {"disk_format": "floppy"}).status_code == 400
    assert post(os_conn, {"container_format": "zip"}).status_code == 400
    assert post(os_conn, {"visibility": "everyone"}).status_code == 400
    assert post(os_conn, {"id": "not-a-uuid"}).status_code == 400
    assert post(os_conn, {"min_ram": -1}).status_code == 400
    assert post(os_conn, {"extra": 5}).status_code == 400
    assert post(os_conn, {"status": "active"}).status_code == 403
    assert post(os_conn, {"deleted": True}).status_code == 403
    denied = post(os_conn, {"name": "pub", "visibility": "public"})
    assert denied.status_code == 403 and "publicize_image" in denied.json()["error"]["message"]
    assert post(os_admin, {"name": "pub", "visibility": "public"}).json()["visibility"] == "public"
    with pytest.raises(openstack.exceptions.ForbiddenException):
        os_conn.image.create_image(name="pub", visibility="public")


def test_upload_limits_and_media_type(os_conn, fakecloud, monkeypatch):
    image = os_conn.image.create_image(name="big", disk_format="raw", container_format="bare")
    wrong = _raw(os_conn, fakecloud, "PUT", f"/v2/images/{image.id}/file", data=b"{}",
                 headers={"Content-Type": "application/json"})
    assert wrong.status_code == 415
    monkeypatch.setattr("openstack_fakecloud.image.routes.MAX_IMAGE_BYTES", 1024)
    monkeypatch.setattr("openstack_fakecloud.image.backend.MAX_IMAGE_BYTES", 1024)
    too_big = _raw(os_conn, fakecloud, "PUT", f"/v2/images/{image.id}/file", data=b"x" * 2048,
                   headers={"Content-Type": "application/octet-stream"})
    assert too_big.status_code == 413
    assert os_conn.image.get_image(image.id).status == "queued"
    assert _raw(os_conn, fakecloud, "PUT", f"/v2/images/{image.id}/file", data=b"ok",
                headers={"Content-Type": "application/octet-stream"}).status_code == 204


def test_update_with_json_patch(os_conn, os_admin, fakecloud):
    image = os_conn.image.create_image(name="before", disk_format="qcow2", container_format="bare",
                                       properties={"keep": "1", "drop": "2"})
    updated = os_conn.image.update_image(image, name="after", min_ram=512, protected=True, keep="changed",
                                         fresh="new")
    assert (updated.name, updated.min_ram, updated.is_protected) == ("after", 512, True)
    state = fakecloud.cloud.image.images[image.id]
    assert (state.properties["keep"], state.properties["fresh"]) == ("changed", "new")

    def patch(conn, ops):
        return _raw(conn, fakecloud, "PATCH", f"/v2/images/{image.id}", json=ops, headers=PATCH)

    removed = patch(os_conn, [{"op": "add", "path": "/drop", "value": "2"}, {"op": "remove", "path": "/drop"},
                              {"op": "add", "path": "/tags", "value": ["t"]},
                              {"op": "replace", "path": "/visibility", "value": "private"}])
    assert removed.status_code == 200
    assert "drop" not in removed.json() and removed.json()["tags"] == ["t"]
    assert removed.json()["visibility"] == "private"
    assert patch(os_conn, [{"op": "remove", "path": "/drop"}]).status_code == 409
    assert patch(os_conn, [{"op": "replace", "path": "/nothing", "value": "x"}]).status_code == 409
    assert patch(os_conn, [{"op": "remove", "path": "/name"}]).status_code == 403
    assert patch(os_conn, [{"op": "replace", "path": "/status", "value": "active"}]).status_code == 403
    assert patch(os_conn, [{"op": "replace", "path": "/visibility", "value": "public"}]).status_code == 403
    assert patch(os_conn, [{"op": "replace", "path": "/min_disk", "value": "big"}]).status_code == 400
    # all or nothing: the valid first change is not kept when the second fails
    assert patch(os_conn, [{"op": "replace", "path": "/name", "value": "half"},
                           {"op": "remove", "path": "/absent"}]).status_code == 409
    assert fakecloud.cloud.image.images[image.id].name == "after"
    wrong_type = _raw(os_conn, fakecloud, "PATCH", f"/v2/images/{image.id}", json=[])
    assert wrong_type.status_code == 415
    assert patch(os_admin, [{"op": "replace", "path": "/visibility", "value": "public"}]).status_code == 200


def test_tags_delete_and_protection(os_conn, os_admin, fakecloud):
    image = os_conn.image.create_image(name="tagged", protected=True)
    os_conn.image.add_tag(image, "web")
    os_conn.image.add_tag(image, "web")
    assert fakecloud.cloud.image.images[image.id].tags == ["web"]
    os_conn.image.remove_tag(image, "web")
    assert _raw(os_conn, fakecloud, "DELETE", f"/v2/images/{image.id}/tags/web").status_code == 404
    with pytest.raises(openstack.exceptions.ForbiddenException):
        os_conn.image.delete_image(image)
    seeded = next(i for i in os_conn.image.images() if i.name == "cirros-0.6.2")
    assert _raw(os_conn, fakecloud, "DELETE", f"/v2/images/{seeded.id}").status_code == 403  # not the owner
    assert _raw(os_conn, fakecloud, "PUT", f"/v2/images/{seeded.id}/tags/x").status_code == 403
    secret = os_admin.image.create_image(name="admin-private", visibility="private")
    assert _raw(os_conn, fakecloud, "DELETE", f"/v2/images/{secret.id}").status_code == 404
    os_conn.image.update_image(os_conn.image.get_image(image.id), protected=False)
    os_conn.image.delete_image(image)
    assert image.id not in fakecloud.cloud.image.images
    assert _raw(os_conn, fakecloud, "DELETE", f"/v2/images/{image.id}").status_code == 404
    assert "tagged" not in [i.name for i in os_conn.image.images()]


def test_deactivate_and_reactivate(os_conn, os_admin, fakecloud):
    image = os_conn.image.create_image(name="deact", disk_format="raw", container_format="bare",
                                       visibility="community")
    path = f"/v2/images/{image.id}"
    assert _raw(os_admin, fakecloud, "POST", path + "/actions/deactivate").status_code == 403  # queued
    _raw(os_conn, fakecloud, "PUT", path + "/file", data=b"data", headers={"Content-Type": "application/octet-stream"})
    others = os_admin.image.create_image(name="not-demos", disk_format="raw", container_format="bare",
                                         visibility="community", data=b"x")
    # Glance's default `deactivate` policy: an admin or a member of the owning project, not anyone who sees it
    assert _raw(os_conn, fakecloud, "POST", f"/v2/images/{others.id}/actions/deactivate").status_code == 403
    os_admin.image.deactivate_image(image)
    assert os_conn.image.get_image(image.id).status == "deactivated"
    denied = _raw(os_conn, fakecloud, "GET", path + "/file")
    assert denied.status_code == 403 and "deactivated" in denied.json()["error"]["message"]
    assert _raw(os_admin, fakecloud, "GET", path + "/file").content == b"data"
    os_admin.image.reactivate_image(image)
    assert _raw(os_conn, fakecloud, "GET", path + "/file").content == b"data"


def test_members_share_a_shared_image(os_conn, os_admin, fakecloud):
    owner_image = os_conn.image.create_image(name="to-share")
    admin_project = os_admin.current_project_id
    demo_project = os_conn.current_project_id
    path = f"/v2/images/{owner_image.id}/members"
    added = _raw(os_conn, fakecloud, "POST", path, json={"member": admin_project})
    assert added.status_code == 200 and added.json()["status"] == "pending"
    assert _raw(os_conn, fakecloud, "POST", path, json={"member": admin_project}).status_code == 409
    # the owner may not accept on the member's behalf; the member can
    assert _raw(os_conn, fakecloud, "PUT", f"{path}/{admin_project}", json={"status": "accepted"}).status_code == 403
    accepted = _raw(os_admin, fakecloud, "PUT", f"{path}/{admin_project}", json={"status": "accepted"})
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert _raw(os_admin, fakecloud, "PUT", f"{path}/{admin_project}", json={"status": "maybe"}).status_code == 400
    listed = _raw(os_conn, fakecloud, "GET", path).json()
    assert [m["member_id"] for m in listed["members"]] == [admin_project]
    assert _raw(os_conn, fakecloud, "DELETE", f"{path}/{admin_project}").status_code == 204
    assert _raw(os_conn, fakecloud, "GET", path).json()["members"] == []
    private = os_conn.image.create_image(name="private", visibility="private")
    assert _raw(os_conn, fakecloud, "POST", f"/v2/images/{private.id}/members",
                json={"member": admin_project}).status_code == 403
    assert demo_project != admin_project


def test_member_visibility_for_a_non_admin_member(fakecloud, os_admin, os_conn):
    """Shared by admin with demo: demo sees it once a member, lists it once accepted."""
    image = os_admin.image.create_image(name="from-admin")
    demo = os_conn.current_project_id
    path = f"/v2/images/{image.id}"
    assert _raw(os_conn, fakecloud, "GET", path).status_code == 404
    _raw(os_admin, fakecloud, "POST", path + "/members", json={"member": demo})
    assert _raw(os_conn, fakecloud, "GET", path).status_code == 200
    assert "from-admin" not in [i.name for i in os_conn.image.images()]
    assert "from-admin" in [i["name"] for i in _raw(os_conn, fakecloud, "GET", "/v2/images",
                                                    params={"member_status": "pending"}).json()["images"]]
    _raw(os_conn, fakecloud, "PUT", f"{path}/members/{demo}", json={"status": "accepted"})
    assert "from-admin" in [i.name for i in os_conn.image.images()]


def test_image_state_survives_dump_and_load(os_conn, fakecloud):
    image = os_conn.image.create_image(name="persisted", disk_format="raw", container_format="bare", tags=["p"])
    _raw(os_conn, fakecloud, "PUT", f"/v2/images/{image.id}/file", data=b"\x00\x01bytes",
         headers={"Content-Type": "application/octet-stream"})
    _raw(os_conn, fakecloud, "POST", f"/v2/images/{image.id}/members", json={"member": "someone"})
    backend = fakecloud.cloud.image
    dumped = json.loads(json.dumps(backend.dump()))
    backend.reset()
    assert image.id not in backend.images
    backend.load(dumped)
    assert backend.data[image.id] == b"\x00\x01bytes"
    assert backend.images[image.id].tags == ["p"] and "someone" in backend.members[image.id]
    assert _raw(os_conn, fakecloud, "GET", f"/v2/images/{image.id}/file").content == b"\x00\x01bytes"


# tempest's Glance surface: the v2.0 patch form, sorting, tasks, metadefs -----------------------------------
def _call(conn, fakecloud, method, path, **kwargs):
    headers = {"X-Auth-Token": conn.session.get_token(), **kwargs.pop("headers", {})}
    return requests.request(method, fakecloud.url + "/image" + path, headers=headers, timeout=10, **kwargs)


def test_v20_patch_form_sort_and_size_filter(os_conn, fakecloud):
    made = _call(os_conn, fakecloud, "POST", "/v2/images",
                 json={"name": "small", "disk_format": "raw", "container_format": "bare"}).json()
    patch = [{"replace": "/name", "value": "renamed"}, {"add": "/color", "value": "blue"}]
    response = _call(os_conn, fakecloud, "PATCH", f"/v2/images/{made['id']}", data=json.dumps(patch),
                     headers={"Content-Type": "application/openstack-images-v2.0-json-patch"})
    assert response.status_code == 200 and (response.json()["name"], response.json()["color"]) == ("renamed", "blue")
    assert _call(os_conn, fakecloud, "PUT", f"/v2/images/{made['id']}/file", data=b"x" * 1071,
                 headers={"Content-Type": "application/octet-stream"}).status_code == 204
    assert [i["id"] for i in _get(os_conn, fakecloud, "/v2/images", size="1071").json()["images"]] == [made["id"]]
    for params in ({"sort": "size:desc"}, {"sort_key": "size", "sort_dir": "desc"}):
        sizes = [i["size"] for i in _get(os_conn, fakecloud, "/v2/images", **params).json()["images"]]
        assert sizes == sorted(sizes, reverse=True)
    assert _get(os_conn, fakecloud, "/v2/images", sort="nope:asc").status_code == 400
    # the owner (not only an admin) deactivates and reactivates its image
    assert _call(os_conn, fakecloud, "POST", f"/v2/images/{made['id']}/actions/deactivate").status_code == 204
    assert _get(os_conn, fakecloud, f"/v2/images/{made['id']}").json()["status"] == "deactivated"


def test_images_path_without_id_is_404(os_conn, fakecloud):
    for method in ("GET", "DELETE"):
        assert _call(os_conn, fakecloud, method, "/v2/images/", allow_redirects=False).status_code == 404


def test_member_schemas_and_import_info(os_conn, fakecloud):
    assert _get(os_conn, fakecloud, "/v2/schemas/member").json()["name"] == "member"
    assert _get(os_conn, fakecloud, "/v2/schemas/members").json()["name"] == "members"
    assert _get(os_conn, fakecloud, "/v2/info/import").json()["import-methods"]["value"] == []


def test_import_tasks_are_admin_only_and_fail(os_conn, os_admin, fakecloud):
    task = {"type": "import", "input": {"import_from": "http://example.invalid/x.qcow2",
                                        "import_from_format": "qcow2", "image_properties": {"name": "x"}}}
    assert _call(os_conn, fakecloud, "POST", "/v2/tasks", json=task).status_code == 403
    assert _call(os_admin, fakecloud, "POST", "/v2/tasks", json={"type": "export"}).status_code == 400
    created = _call(os_admin, fakecloud, "POST", "/v2/tasks", json=task)
    assert created.status_code == 201 and created.json()["status"] == "pending"
    shown = _get(os_admin, fakecloud, f"/v2/tasks/{created.json()['id']}").json()
    assert shown["status"] == "failure" and "remote" in shown["message"]
    assert [t["id"] for t in _get(os_admin, fakecloud, "/v2/tasks").json()["tasks"]] == [shown["id"]]


def test_metadef_namespaces_and_their_contents(os_conn, os_admin, fakecloud):
    ns = "/v2/metadefs/namespaces"
    types = _get(os_admin, fakecloud, "/v2/metadefs/resource_types").json()["resource_types"]
    assert "OS::Glance::Image" in {t["name"] for t in types}
    body = {"namespace": "tempest-ns", "display_name": "T", "visibility": "public", "protected": True,
            "resource_type_associations": [{"name": "OS::Glance::Image"}]}
    assert _call(os_conn, fakecloud, "POST", ns, json=body).status_code == 403  # admins write metadefs
    created = _call(os_admin, fakecloud, "POST", ns, json=body)
    assert created.status_code == 201 and created.json()["resource_type_associations"][0]["name"] == "OS::Glance::Image"
    assert _call(os_admin, fakecloud, "POST", ns, json=body).status_code == 409
    assert "tempest-ns" in [n["namespace"] for n in _get(os_conn, fakecloud, ns).json()["namespaces"]]
    assert _call(os_admin, fakecloud, "DELETE", f"{ns}/tempest-ns").status_code == 403  # protected
    # objects, properties, tags
    obj = _call(os_admin, fakecloud, "POST", f"{ns}/tempest-ns/objects", json={"name": "o1"})
    assert obj.status_code == 201 and obj.json()["self"] == f"{ns}/tempest-ns/objects/o1"
    assert _call(os_admin, fakecloud, "PUT", f"{ns}/tempest-ns/objects/o1", json={"name": "o2"}).json()["name"] == "o2"
    assert [o["name"] for o in _get(os_admin, fakecloud, f"{ns}/tempest-ns/objects").json()["objects"]] == ["o2"]
    prop = {"name": "hypervisor", "title": "Hypervisor", "type": "string", "enum": ["kvm", "qemu"]}
    assert _call(os_admin, fakecloud, "POST", f"{ns}/tempest-ns/properties", json=prop).json()["title"] == "Hypervisor"
    assert _call(os_admin, fakecloud, "POST", f"{ns}/tempest-ns/properties",
                 json={"name": "bad", "title": "B", "type": "nope"}).status_code == 400
    listed = _get(os_admin, fakecloud, f"{ns}/tempest-ns/properties").json()["properties"]
    assert listed == {"hypervisor": {"title": "Hypervisor", "type": "string", "enum": ["kvm", "qemu"]}}
    tags = _call(os_admin, fakecloud, "POST", f"{ns}/tempest-ns/tags", json={"tags": [{"name": "a"}, {"name": "b"}]})
    assert tags.status_code == 201
    assert _call(os_admin, fakecloud, "POST", f"{ns}/tempest-ns/tags/c").status_code == 201
    assert _call(os_admin, fakecloud, "PUT", f"{ns}/tempest-ns/tags/c", json={"name": "d"}).json()["name"] == "d"
    assert [t["name"] for t in _get(os_admin, fakecloud, f"{ns}/tempest-ns/tags").json()["tags"]] == ["a", "b", "d"]
    shown = _get(os_admin, fakecloud, f"{ns}/tempest-ns").json()
    assert set(shown["properties"]) == {"hypervisor"} and [t["name"] for t in shown["tags"]] == ["a", "b", "d"]
    # dissociate, unprotect, delete
    assert _call(os_admin, fakecloud, "DELETE", f"{ns}/tempest-ns/resource_types/OS::Glance::Image").status_code == 204
    assert _get(os_admin, fakecloud, f"{ns}/tempest-ns/resource_types").json()["resource_type_associations"] == []
    update = {"namespace": "tempest-ns", "visibility": "private", "protected": False}
    assert _call(os_admin, fakecloud, "PUT", f"{ns}/tempest-ns", json=update).json()["visibility"] == "private"
    assert _get(os_conn, fakecloud, f"{ns}/tempest-ns").status_code == 404  # private: the owner's (admin's)
    assert _call(os_admin, fakecloud, "DELETE", f"{ns}/tempest-ns").status_code == 204
    assert _get(os_admin, fakecloud, f"{ns}/tempest-ns").status_code == 404


@pytest.mark.parametrize("kind,name", [("namespace", "namespace"), ("namespaces", "namespaces"),
                                       ("resource_type", "resource_type_association"),
                                       ("resource_types", "resource_type_associations"), ("object", "object"),
                                       ("objects", "objects"), ("property", "property"),
                                       ("properties", "properties"), ("tag", "tag"), ("tags", "tags")])
def test_metadef_schemas(os_conn, fakecloud, kind, name):
    assert _get(os_conn, fakecloud, f"/v2/schemas/metadefs/{kind}").json()["name"] == name


def test_metadefs_survive_dump_and_load(os_admin, fakecloud):
    _call(os_admin, fakecloud, "POST", "/v2/metadefs/namespaces", json={"namespace": "kept"})
    _call(os_admin, fakecloud, "POST", "/v2/metadefs/namespaces/kept/resource_types", json={"name": "OS::Nova::Flavor"})
    backend = fakecloud.cloud.image
    saved = backend.dump()
    backend.reset()
    backend.load(saved)
    assert backend.metadefs.namespaces["kept"].associations[0].name == "OS::Nova::Flavor"


def test_os_glance_properties_are_reserved(os_conn, fakecloud):
    refused = _call(os_conn, fakecloud, "POST", "/v2/images", json={"name": "r", "os_glance_foo": "bar"})
    assert refused.status_code == 403 and "reserved" in refused.json()["error"]["message"]
    made = _call(os_conn, fakecloud, "POST", "/v2/images", json={"name": "r"}).json()
    patch = [{"op": "add", "path": "/os_glance_foo", "value": "bar"}]
    assert _call(os_conn, fakecloud, "PATCH", f"/v2/images/{made['id']}", data=json.dumps(patch),
                 headers=PATCH).status_code == 403
