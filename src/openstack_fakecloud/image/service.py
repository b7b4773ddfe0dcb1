"""The Glance v2 service object that every image routes module registers its routes on."""

from __future__ import annotations

from openstack_fakecloud.framework import Service

service = Service("image", "/image", error_style="glance")
