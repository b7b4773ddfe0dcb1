"""Hearth's REST API: Trove v1.0-compatible (python-troveclient and `openstack database` work unchanged),
plus the 2014 security-group extension and Hearth's events/operations views. See `app.create_app`."""
