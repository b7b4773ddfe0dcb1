pytest_plugins = ["openstack_fakecloud.testing"]
