from fakecloud.framework import Service

service = Service("volume", "/volume", error_style="nova")
