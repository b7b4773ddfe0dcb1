"""Stock cloud images (datastore versions with boot = cloud_init): the server boots with a cloud-config that
makes it a PostgreSQL server with Hearth's password and the instance's access, on both engines. fakecloud runs
no cloud-init, so the database never answers: the provision fails with that reason after
`datastore_ready_seconds`, the record and the cloud agree, and a delete leaves nothing behind.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.config import Datastore, DatastoreVersion, Settings
from hearth.datastores.cloudinit import PASSWORD_FILE
from hearth.db.models import Instance

STOCK = [Datastore(name="postgresql", default_version="16", versions=[
    DatastoreVersion(name="16", image="postgresql-16", port=5432, boot="cloud_init")])]


@pytest.fixture(params=["natives", "orchestrator"])
def hearth_settings(request: pytest.FixtureRequest, tmp_path: Path, fakecloud: Any, db_url: str) -> Settings:
    clouds_yaml = fakecloud.write_clouds_yaml(tmp_path / "clouds.yaml")
    return Settings(home=tmp_path, db_url=db_url, cloud="fakecloud", clouds_yaml=clouds_yaml, workers=4,
                    engine=request.param, datastores=STOCK, heartbeat_seconds=0.5, stale_after_seconds=30.0,
                    token_cache_seconds=60.0, health_check_seconds=0, datastore_ready_seconds=1.0)


def test_a_stock_image_boots_with_cloud_init_that_sets_up_postgresql(hearth_api):
    api = hearth_api.client()
    inst = hearth_api.create(api, "stock", access={"allowed_cidrs": ["192.0.2.0/24"]})
    assert inst["status"] == "ERROR" and "the database did not answer within 1 s" in inst["fault"]["message"]

    admin = hearth_api.cloud.connect("admin")
    server = admin.compute.get_server(hearth_api.cloud_resource("servers", inst["id"])["id"])
    document = base64.b64decode(server.user_data).decode()
    assert document.startswith("#cloud-config\n")
    config = yaml.safe_load(document)
    hba = next(f["content"] for f in config["write_files"] if f["path"].endswith("/pg_hba.conf"))
    assert "192.0.2.0/24" in hba and "127.0.0.1/32" in hba  # the user's CIDR and Hearth's management CIDR
    assert config["packages"] == ["postgresql-16"]
    password_sql = next(f["content"] for f in config["write_files"] if f["path"] == PASSWORD_FILE)
    assert "WITH PASSWORD 'SCRAM-SHA-256$" in password_sql  # a verifier, never the password itself
    with hearth_api.runtime.sessions() as session:
        sealed = session.get(Instance, inst["id"]).admin_password
    assert hearth_api.runtime.secrets.open(sealed) not in document
    events = " ".join(e["message"] for e in api.get(f"/instances/{inst['id']}/events").json()["events"])
    assert "cloud-config" not in events and "SCRAM" not in events

    # the record and the cloud agree: the resources are recorded, and a delete removes every one of them
    assert api.delete(f"/instances/{inst['id']}").status_code == 202
    hearth_api.settle()
    assert hearth_api.leftovers() == {}
