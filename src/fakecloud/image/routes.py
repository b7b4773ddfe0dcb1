from fakecloud.framework import Service

service = Service("image", "/image", error_style="glance")
