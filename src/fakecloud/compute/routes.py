from fakecloud.framework import Service

service = Service("compute", "/compute/v2.1", error_style="nova")
