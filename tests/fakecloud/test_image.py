"""Glance v2 over real HTTP: discovery, list filters and paging, show, find by name, schemas."""

import contextlib
import uuid
import warnings
from collections.abc import Iterator

import openstack.exceptions
import pytest
import requests

from fakecloud.identity.backend import stable_id


@contextlib.contextmanager
def sdk_find_image_warning() -> Iterator[None]:
    """openstacksdk's Image.find (openstack/image/v2/image.py) always searches with ignore_missing=True first, so
    find_image warns (RemovedInSDK60Warning) even when called with ignore_missing=False: not ours to fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The ignore_missing parameter of all find_", PendingDeprecationWarning)
        yield


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
    with sdk_find_image_warning():
        image = os_conn.image.find_image("postgresql-16", ignore_missing=False)
    assert image.name == "postgresql-16"
    assert os_conn.image.get_image(image.id).id == image.id
    raw = _get(os_conn, fakecloud, f"/v2/images/{image.id}").json()
    assert raw["id"] == image.id and "image" not in raw  # bare object, no wrapper
    assert raw["datastore"] == "postgresql" and raw["version"] == "16"  # extra properties are top-level
    assert _get(os_conn, fakecloud, "/v2/images/postgresql-16").status_code == 404
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.image.get_image(str(uuid.uuid4()))
    with sdk_find_image_warning(), pytest.raises(openstack.exceptions.NotFoundException):
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
    assert len(list(os_conn.image.images(status="active", visibility="public"))) == 3
    assert list(os_conn.image.images(status="queued")) == []


def test_paging_with_next_link(os_conn, fakecloud):
    first = _get(os_conn, fakecloud, "/v2/images", limit=2).json()
    # fakecloud's Glance next link: relative, the marker of the page's last image and the limit.
    assert len(first["images"]) == 2
    assert first["next"] == f"/v2/images?marker={first['images'][-1]['id']}&limit=2"
    rest = _get(os_conn, fakecloud, "/v2/images", limit=2, marker=first["images"][-1]["id"]).json()
    assert len(rest["images"]) == 1 and "next" not in rest
    paged = [i.name for i in os_conn.image.images(limit=1)]
    assert sorted(paged) == ["cirros-0.6.2", "mysql-8.0", "postgresql-16"]


def test_schemas(os_conn, fakecloud):
    schema = _get(os_conn, fakecloud, "/v2/schemas/image").json()
    assert schema["name"] == "image"
    assert schema["additionalProperties"] == {"type": "string"}
    assert schema["properties"]["min_disk"]["type"] == "integer"
    assert schema["properties"]["visibility"]["enum"]
    images = _get(os_conn, fakecloud, "/v2/schemas/images").json()
    assert images["properties"]["images"]["items"]["name"] == "image"
