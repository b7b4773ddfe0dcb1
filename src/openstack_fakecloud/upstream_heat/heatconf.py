"""heat.conf and api-paste.ini for one upstream Heat process driven against fakecloud.

Why each non-default setting is there:
- `transport_url = fake://`: the engine and the API share one process (see launcher.py), no broker.
- `deferred_auth_method = password`: the default, `trusts`, needs Keystone's OS-TRUST API (trusts and
  trust-scoped tokens), which fakecloud's Keystone does not implement. Heat's clients reuse the user's
  validated token and catalog instead.
- `heat_metadata_server_url`: without it every server create looks for a `cloudformation` endpoint.
- `enable_stack_adopt` / `enable_stack_abandon`: off by default; adopting a natives instance needs them.
- `[oslo_policy] enforce_new_defaults/enforce_scope = false`: fakecloud's tokens carry the classic
  member/admin roles, not the scoped personas the new defaults expect.
- The paste pipeline is Heat's `default` one without the osprofiler filter.
"""

from __future__ import annotations

from pathlib import Path

PASTE_INI = """\
[composite:heat-api]
use = egg:Paste#urlmap
/: api

[composite:api]
paste.composite_factory = heat.api:pipeline_factory
default = request_id faultwrap http_proxy_to_wsgi versionnegotiation authurl authtoken context apiv1app

[app:apiv1app]
paste.app_factory = heat.common.wsgi:app_factory
heat.app_factory = heat.api.openstack.v1:API

[filter:versionnegotiation]
paste.filter_factory = heat.common.wsgi:filter_factory
heat.filter_factory = heat.api.openstack:version_negotiation_filter

[filter:faultwrap]
paste.filter_factory = heat.common.wsgi:filter_factory
heat.filter_factory = heat.api.openstack:faultwrap_filter

[filter:context]
paste.filter_factory = heat.common.context:ContextMiddleware_filter_factory

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory

[filter:authurl]
paste.filter_factory = heat.common.auth_url:filter_factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory

[filter:request_id]
paste.filter_factory = oslo_middleware.request_id:RequestId.factory
"""

HEAT_CONF = """\
[DEFAULT]
transport_url = fake://
deferred_auth_method = password
heat_metadata_server_url = {heat_url}
num_engine_workers = 1
convergence_engine = true
enable_stack_adopt = true
enable_stack_abandon = true
region_name_for_services = {region}
log_file = {workdir}/heat.log
debug = false
environment_dir = {workdir}/environment.d
template_dir = {workdir}/templates

[database]
connection = sqlite:///{workdir}/heat.sqlite

[paste_deploy]
flavor = default
api_paste_config = {workdir}/api-paste.ini

[keystone_authtoken]
www_authenticate_uri = {keystone_url}
auth_url = {keystone_url}
auth_type = password
username = {username}
password = {password}
user_domain_name = Default
project_name = {project}
project_domain_name = Default
region_name = {region}

[oslo_policy]
enforce_new_defaults = false
enforce_scope = false

[oslo_messaging_notifications]
driver = noop

[oslo_concurrency]
lock_path = {workdir}/locks
"""


def write_config(workdir: Path, *, heat_url: str, keystone_url: str, username: str, password: str,
                 project: str = "service", region: str = "RegionOne") -> Path:
    """Write heat.conf (+ api-paste.ini and the empty dirs it names) into `workdir`; returns heat.conf."""
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("environment.d", "templates", "locks"):
        (workdir / sub).mkdir(exist_ok=True)
    (workdir / "api-paste.ini").write_text(PASTE_INI)
    conf = workdir / "heat.conf"
    conf.write_text(HEAT_CONF.format(heat_url=heat_url.rstrip("/"), keystone_url=keystone_url.rstrip("/"),
                                     username=username, password=password, project=project, region=region,
                                     workdir=workdir))
    conf.chmod(0o600)  # holds the service user's password
    return conf
