"""fakecloud: an embedded OpenStack (Keystone, Nova, Cinder, Neutron, Glance) for tests and local runs.

Real OpenStack clients drive it over real HTTP. State lives in memory (optionally saved to a file),
transitions follow a controllable clock, and faults can be injected per service and operation.
"""

__version__ = "0.1.0"
