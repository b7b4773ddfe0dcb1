"""Keystone v3: discovery, password and token auth, validation, revocation, the service catalog."""
