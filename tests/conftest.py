pytest_plugins = ["fakecloud.testing"]
