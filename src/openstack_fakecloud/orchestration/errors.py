"""Heat's exceptions, rendered by the router in Heat's fault shape (`error.type` is the class name).

The messages follow heat/common/exception.py, so a client that greps for "Unknown Property" or
"could not be found" sees the same text it would from a real Heat.
"""

from __future__ import annotations

from openstack_fakecloud.errors import CloudError


class HeatError(CloudError):
    """A Heat exception: `error_type` is the Heat class name that the fault body reports."""

    status = 400
    heat_type = "HeatException"

    def __init__(self, message: str, *, status: int | None = None, error_type: str | None = None) -> None:
        super().__init__(message, status=status, error_type=error_type or self.heat_type)


class StackValidationFailed(HeatError):
    heat_type = "StackValidationFailed"

    def __init__(self, message: str, error: str = "", path: list[str | int] | None = None) -> None:
        super().__init__(with_path(error, path or [], message))
        self.error = error
        self.path = list(path or [])
        self.bare_message = message


class InvalidTemplateVersion(HeatError):
    heat_type = "InvalidTemplateVersion"

    def __init__(self, explanation: str) -> None:
        super().__init__(f"The template version is invalid: {explanation}")


class InvalidTemplateSection(HeatError):
    heat_type = "InvalidTemplateSection"

    def __init__(self, section: str) -> None:
        super().__init__(f"The template section is invalid: {section}")


class InvalidTemplateReference(HeatError):
    heat_type = "InvalidTemplateReference"

    def __init__(self, resource: str, key: str) -> None:
        super().__init__(f'The specified reference "{resource}" (in {key}) is incorrect.')


class InvalidTemplateAttribute(HeatError):
    heat_type = "InvalidTemplateAttribute"

    def __init__(self, resource: str, key: str) -> None:
        super().__init__(f"The Referenced Attribute ({resource} {key}) is incorrect.")


class CircularDependencyException(HeatError):
    heat_type = "CircularDependencyException"

    def __init__(self, cycle: str) -> None:
        super().__init__(f"Circular Dependency Found: {cycle}")


class UserParameterMissing(HeatError):
    heat_type = "UserParameterMissing"

    def __init__(self, key: str) -> None:
        super().__init__(f"The Parameter ({key}) was not provided.")


class UnknownUserParameter(HeatError):
    heat_type = "UnknownUserParameter"

    def __init__(self, key: str) -> None:
        super().__init__(f"The Parameter ({key}) was not defined in template.")


class ImmutableParameterModified(HeatError):
    heat_type = "ImmutableParameterModified"

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"The following parameters are immutable and may not be updated: {', '.join(keys)}")


class NotSupported(HeatError):
    heat_type = "NotSupported"

    def __init__(self, feature: str) -> None:
        super().__init__(f"{feature} is not supported.")


class ResourcePropertyConflict(HeatError):
    heat_type = "ResourcePropertyConflict"

    def __init__(self, *props: str) -> None:
        super().__init__(f"Cannot define the following properties at the same time: {', '.join(props)}.")


class EntityNotFound(HeatError):
    status = 404
    heat_type = "EntityNotFound"

    def __init__(self, entity: str, name: str) -> None:
        super().__init__(f"The {entity} ({name}) could not be found.")


class ResourceNotFound(HeatError):
    status = 404
    heat_type = "ResourceNotFound"

    def __init__(self, resource: str, stack: str) -> None:
        super().__init__(f"The Resource ({resource}) could not be found in Stack {stack}.")


class StackExists(HeatError):
    status = 409
    heat_type = "StackExists"

    def __init__(self, name: str) -> None:
        super().__init__(f"The Stack ({name}) already exists.")


class ActionInProgress(HeatError):
    status = 409
    heat_type = "ActionInProgress"

    def __init__(self, name: str, action: str) -> None:
        super().__init__(f"Stack {name} already has an action ({action}) in progress.")


def with_path(error: str, path: list[str | int], message: str) -> str:
    """HeatExceptionWithPath: "<error>: <a.b[0].c>: <message>" (empty parts are left out)."""
    text = ""
    for item in path:
        if isinstance(item, int) or str(item).isdigit():
            text += f"[{item}]"
        elif text:
            text += f".{item}"
        else:
            text = str(item)
    return (f"{error}: " if error else "") + (f"{text}: " if text else "") + message


class ResourceFailure(Exception):
    """A resource action failed: `kind` is the exception name Heat would print (ResourceInError, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def failure_of(err: Exception) -> ResourceFailure:
    """Turn what a plugin raised into a ResourceFailure, naming a backend error as heat's clients do."""
    if isinstance(err, ResourceFailure):
        return err
    if isinstance(err, HeatError):
        return ResourceFailure(err.error_type or "HeatException", err.message)
    if isinstance(err, CloudError):
        kinds = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
                 413: "OverLimit"}
        kind = kinds.get(err.status, "ClientException")
        return ResourceFailure(kind, f"{err.message} (HTTP {err.status})")
    return ResourceFailure(type(err).__name__, str(err))
