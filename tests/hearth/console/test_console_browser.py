"""The web console in a real headless Chromium (selenium, Debian's chromedriver): an administrator signs in with
Keystone credentials, sees the fleet, opens an instance and reads its operation timeline (a retry caused by an
injected cloud fault is highlighted), follows a fleet migration onto Heat to its end; a tenant sees its own
project only, in the list and by URL. Screenshots go under the test's tmp_path (their paths are printed)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

pytest.importorskip("jinja2")

# One database is enough here: the pages read through the service layer, which the API tests run on both.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def shot(driver: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"console-{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def sign_in(driver: Any, url: str, creds: dict[str, Any]) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/console/login")
    driver.find_element(By.ID, "username").send_keys(creds["username"])
    driver.find_element(By.ID, "password").send_keys(creds["password"])
    project = driver.find_element(By.ID, "project")
    project.clear()
    project.send_keys(creds["project_name"])
    driver.find_element(By.ID, "sign-in").click()
    wait_for(driver, lambda: driver.current_url.rstrip("/").endswith("/console"), "the fleet page after sign-in")


def wait_for(driver: Any, check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {driver.current_url}"
        time.sleep(0.1)


def listed_instances(driver: Any) -> set[str]:
    from selenium.webdriver.common.by import By

    return {row.get_attribute("data-instance")
            for row in driver.find_elements(By.CSS_SELECTOR, "#instances tr[data-instance]")}


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def test_admin_sees_the_fleet_an_instance_and_its_timeline(hearth_api, serve_console, browser, tmp_path):
    from selenium.webdriver.common.by import By

    demo, other = hearth_api.client(), hearth_api.client("other")
    # one transient fault on the way: the create retries, and the timeline shows it
    for service, operation in (("compute", "server.create"), ("orchestration", "stack.create")):
        hearth_api.cloud.control.add_fault(service=service, operation=operation, action="http_error", status=503,
                                           when="after", count=1)
    mine = hearth_api.create(demo, "orders-db")
    theirs = hearth_api.create(other, "billing-db")
    url = serve_console(hearth_api.runtime)
    admin = hearth_api.cloud.auth("admin")

    sign_in(browser, url, admin)
    assert text_of(browser, "current-user") == admin["username"]
    assert text_of(browser, "count-instances") == "2"
    listed = listed_instances(browser)
    assert listed == {mine["id"], theirs["id"]}
    assert "ACTIVE" in text_of(browser, "by-status")
    engine = mine["engine"]
    assert f"{engine} 2" in text_of(browser, "by-engine") or f"{engine}\n2" in text_of(browser, "by-engine")
    shot(browser, tmp_path, "fleet-admin")

    browser.find_element(By.LINK_TEXT, "orders-db").click()
    wait_for(browser, lambda: mine["id"] in browser.current_url, "the instance page")
    assert text_of(browser, "instance-status") == "ACTIVE"
    resources = text_of(browser, "resources")
    assert hearth_api.cloud_resource("servers", mine["id"])["id"] in resources
    assert hearth_api.cloud_resource("volumes", mine["id"])["id"] in resources
    assert hearth_api.cloud_resource("security_groups", mine["id"])["id"] in resources
    timelines = browser.find_elements(By.CSS_SELECTOR, "article.timeline")
    assert timelines, browser.page_source[:2000]
    create = timelines[-1]  # newest first: the create is the oldest
    assert "succeeded" in create.find_element(By.TAG_NAME, "header").text.lower()
    steps = create.find_elements(By.CSS_SELECTOR, "li.step")
    assert len(steps) >= 2
    retries = create.find_elements(By.CSS_SELECTOR, "li.step.retry")
    assert retries and "retrying in" in retries[0].text, [s.text for s in steps]
    assert all(s.find_element(By.CLASS_NAME, "at").text.startswith("+") for s in steps)
    browser.execute_script("arguments[0].scrollIntoView()", create)
    shot(browser, tmp_path, "instance-timeline")

    # the session is only in an HttpOnly, SameSite=Strict cookie, sealed: no token in it or on any page
    token = hearth_api.credentials("admin").token
    cookie = browser.get_cookie("hearth_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert token not in cookie["value"] and token not in browser.page_source

    # sign out: the cookie is gone and the pages send back to the login page
    browser.find_element(By.ID, "logout").click()
    wait_for(browser, lambda: browser.current_url.endswith("/console/login"), "the login page after sign-out")
    assert browser.get_cookie("hearth_console") is None
    browser.get(f"{url}/console/instances/{mine['id']}")
    assert browser.current_url.endswith("/console/login")


def test_a_tenant_sees_only_its_own_project(hearth_api, serve_console, browser, tmp_path):
    from selenium.webdriver.common.by import By

    mine = hearth_api.create(hearth_api.client(), "orders-db")
    theirs = hearth_api.create(hearth_api.client("other"), "billing-db")
    url = serve_console(hearth_api.runtime)
    sign_in(browser, url, hearth_api.cloud.auth("demo"))

    assert text_of(browser, "count-instances") == "1"
    listed = listed_instances(browser)
    assert listed == {mine["id"]}
    assert "billing-db" not in browser.page_source and theirs["id"] not in browser.page_source
    assert not browser.find_elements(By.LINK_TEXT, "Migrations")  # admins only
    shot(browser, tmp_path, "fleet-tenant")

    browser.get(f"{url}/console/instances/{theirs['id']}")
    assert text_of(browser, "error-title") == "Instance not found"
    assert "billing-db" not in browser.page_source
    shot(browser, tmp_path, "tenant-other-instance")
    browser.get(f"{url}/console/migrations")
    assert text_of(browser, "error-title") == "Administrators only"

    # the same over plain HTTP: the status codes, and a wrong password is refused
    session = requests.Session()
    assert session.get(f"{url}/console/", allow_redirects=False).status_code == 303
    refused = session.post(f"{url}/console/login", data={"username": "demo", "password": "wrong", "project": "demo"})
    assert refused.status_code == 401 and "Invalid username, password or project." in refused.text
    assert 'value="wrong"' not in refused.text  # the password is never sent back
    demo = hearth_api.cloud.auth("demo")
    ok = session.post(f"{url}/console/login", data={"username": demo["username"], "password": demo["password"],
                                                    "project": demo["project_name"]}, allow_redirects=False)
    assert ok.status_code == 303 and "hearth_console" in ok.cookies
    assert session.get(f"{url}/console/instances/{theirs['id']}").status_code == 404
    assert session.get(f"{url}/console/instances/{mine['id']}").status_code == 200
    assert session.get(f"{url}/console/migrations").status_code == 403
    forged = requests.get(f"{url}/console/", cookies={"hearth_console": "not-a-sealed-cookie"},
                          allow_redirects=False)
    assert forged.status_code == 303 and forged.headers["location"] == "/console/login"


def test_an_admin_follows_a_fleet_migration(hearth_api, restart, serve_console, browser, tmp_path):
    from selenium.webdriver.common.by import By

    natives = restart("natives")
    demo = natives.client()
    made = [natives.create(demo, f"fleet-{i}", settle=False) for i in range(3)]
    natives.settle(180)
    hearth = restart("migration")
    admin = hearth.client("admin")
    started = admin.post("/mgmt/migrations", json={"migration": {"to": "orchestrator", "max_in_flight": 1}})
    assert started.status_code == 202, started.text
    job_id = started.json()["migration"]["id"]

    url = serve_console(hearth.runtime)
    sign_in(browser, url, hearth.cloud.auth("admin"))
    browser.find_element(By.LINK_TEXT, "Migrations").click()
    wait_for(browser, lambda: browser.current_url.endswith("/console/migrations"), "the migrations page")
    browser.find_element(By.LINK_TEXT, job_id).click()
    wait_for(browser, lambda: job_id in browser.current_url, "the migration page")
    rows = browser.find_elements(By.CSS_SELECTOR, "#migration-instances tr[data-instance]")
    assert {r.get_attribute("data-instance") for r in rows} == {i["id"] for i in made}
    shot(browser, tmp_path, "migration-running")

    # the page refreshes itself while the job runs: wait for it to show the end, without reloading it here
    def finished() -> bool:
        try:
            return text_of(browser, "migration-state").lower() == "finished"  # CSS shows badges in capitals
        except Exception:  # the page is being reloaded
            return False

    wait_for(browser, finished, "the migration to finish", timeout=180)
    assert text_of(browser, "migration-percent") == "100%"
    assert text_of(browser, "count-moved") == "3" and text_of(browser, "count-failed") == "0"
    shot(browser, tmp_path, "migration-finished")

    browser.get(f"{url}/console/")
    assert text_of(browser, "on-stacks") == "100%"
