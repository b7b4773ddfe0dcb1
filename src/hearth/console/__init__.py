"""Hearth's web console: read-only, server-rendered pages over the same service layer and Keystone
authentication as the REST API (admin sees every project, a tenant its own).

`routes.router` serves `/console/...`; the application includes it (`app.include_router(routes.router)`).
"""
