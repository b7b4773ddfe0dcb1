from fakecloud.framework import Service

service = Service("network", "/network", error_style="neutron")
