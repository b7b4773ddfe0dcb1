"""Cloud errors and how each service writes them on the wire.

Backends raise these with a status and a message; the routing layer renders them in the shape of
the service that was called (Nova/Cinder fault wrappers, NeutronError, Keystone's error, Heat's fault).
"""

from __future__ import annotations

from typing import Any, Literal

ErrorStyle = Literal["nova", "neutron", "keystone", "glance", "heat"]

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# Nova's and Cinder's fault wrapper keys (nova/api/openstack/wsgi.py Fault).
_NOVA_KEYS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    501: "notImplemented",
    503: "serviceUnavailable",
}

_NEUTRON_TYPES = {
    400: "BadRequest",
    401: "NotAuthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


class CloudError(Exception):
    status = 500

    def __init__(self, message: str, *, status: int | None = None, error_type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.error_type = error_type  # Neutron's `type` / Heat's exception class name

    def body(self, style: ErrorStyle) -> dict[str, Any]:
        return render_error(style, self.status, self.message, self.error_type)


class BadRequest(CloudError):
    status = 400


class Unauthorized(CloudError):
    status = 401


class Forbidden(CloudError):
    status = 403


class NotFound(CloudError):
    status = 404


class Conflict(CloudError):
    status = 409


class NotAcceptable(CloudError):
    status = 406


class QuotaExceeded(CloudError):
    """Raised with the status of the service that enforces it: Nova 403, Cinder 413, Neutron 409."""


def render_error(style: ErrorStyle, status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
    if style == "nova":
        return {_NOVA_KEYS.get(status, "computeFault"): {"code": status, "message": message}}
    if style == "neutron":
        return {
            "NeutronError": {
                "type": error_type or _NEUTRON_TYPES.get(status, "NeutronError"),
                "message": message,
                "detail": "",
            }
        }
    if style == "heat":
        return {
            "code": status,
            "title": _TITLES.get(status, "Error"),
            "explanation": message,
            "error": {"message": message, "type": error_type or "HeatException", "traceback": None},
        }
    # keystone and glance
    return {"error": {"code": status, "title": _TITLES.get(status, "Error"), "message": message}}
