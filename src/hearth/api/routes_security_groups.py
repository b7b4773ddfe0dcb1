"""Trove 2014.1's security-group extension, over Hearth's rules.

Each instance has exactly one group. Its id in this API is a uuid5 of the instance id (stable whatever
engine realises it; see `views.security_group_id`); `GET /security-groups/{ref}` and a rule's
`group_id` also accept the instance id or the cloud's (Neutron) group id. Creating a rule for a CIDR
makes one rule per datastore port (201, a list). Changing a rule's CIDR (`PUT`, a Hearth addition)
answers 202 with the rule as it will be once the change is applied; removal answers 204. The three rule
writes take `?dry_run=true` and then answer 200 with the plan (see routes_instances), changing nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from hearth import service
from hearth.api.auth import Scope, project_scope
from hearth.api.errors import responses
from hearth.api.routes_instances import DRY_RUN_PLAN, DryRun, plan_response
from hearth.api.schemas import RuleCreateBody, RuleUpdateBody
from hearth.db.models import utcnow
from hearth.views import rule_view, security_group_id, security_group_view

router = APIRouter(tags=["security groups (2014 extension)"])


@router.get("/security-groups", summary="One security group per instance")
def list_groups(scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    instances = service.list_all_instances(scope.runtime, scope.project_id)
    return {"security_groups": [security_group_view(i, scope.links) for i in instances]}


@router.get("/security-groups/{ref}", summary="A group by its id or by its instance's id",
            responses=responses(404))
def show_group(ref: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    inst = service.find_security_group(scope.runtime, scope.project_id, ref)
    return {"security_group": security_group_view(inst, scope.links)}


@router.post("/security-group-rules", status_code=201, summary="Open the datastore port(s) to a CIDR",
             responses={**DRY_RUN_PLAN, **responses(404, 409, 413, 422, 503)})
def create_rule(body: RuleCreateBody, scope: Scope = Depends(project_scope), dry_run: bool = DryRun) -> Any:
    req = body.security_group_rule
    add = service.add_rules(scope.runtime, scope.project_id, req.group_id, req.cidr)
    if dry_run:
        return plan_response(add.plan(scope.runtime))
    inst, new_ids = add.record(scope.runtime)
    fresh = service.get_instance(scope.runtime, scope.project_id, inst.id)
    gid = security_group_id(inst.id)
    return {"security_group_rule": [rule_view(r, gid) for r in fresh.rules if r.id in new_ids]}


@router.put("/security-group-rules/{rule_id}", status_code=202, summary="Hearth: change one rule's CIDR",
            responses={**DRY_RUN_PLAN, **responses(404, 409, 413, 422, 503)})
def update_rule(rule_id: str, body: RuleUpdateBody, scope: Scope = Depends(project_scope),
                dry_run: bool = DryRun) -> Any:
    update = service.update_rule_cidr(scope.runtime, scope.project_id, rule_id, body.security_group_rule.cidr)
    if dry_run:
        return plan_response(update.plan(scope.runtime))
    inst, changed = update.record(scope.runtime)
    created = next((r.created_at for r in inst.rules if r.id == rule_id), utcnow())
    return {"security_group_rule": rule_view(changed, security_group_id(inst.id), created)}


@router.delete("/security-group-rules/{rule_id}", status_code=204, response_model=None, summary="Remove a rule",
               responses={**DRY_RUN_PLAN, **responses(404, 409, 422, 503)})
def delete_rule(rule_id: str, scope: Scope = Depends(project_scope), dry_run: bool = DryRun) -> Any:
    delete = service.delete_rule(scope.runtime, scope.project_id, rule_id)
    if dry_run:
        return plan_response(delete.plan(scope.runtime))
    delete.record(scope.runtime)
    return Response(status_code=204)
