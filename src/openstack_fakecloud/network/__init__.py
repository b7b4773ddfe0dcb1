"""Neutron v2.0: networks, subnets, ports, security groups and rules, routers, floating IPs, quotas.

routes (HTTP) -> requests (body -> typed request) -> backend (the `cloud.network` façade) -> one store per
job: networks (Topology), ipam, ports, secgroups, quotas, routers and floatingips (the L3 service); records
and protocols are shared leaves; views render records for the API and the admin inventory.
"""
