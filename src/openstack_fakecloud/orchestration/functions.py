"""HOT intrinsic functions, per template version, evaluated lazily against a resolver.

A snippet is plain data until it is resolved: the engine resolves a resource's properties only when
that resource is about to be created or updated, so `get_attr` sees the live attribute. A dict with
one key that names a function of the template's version is a call; any other dict is data (as in
Heat, `{list_joinx: ...}` is just a map). Static helpers find the resources a snippet refers to,
which is where the dependency graph's implicit edges come from.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from openstack_fakecloud.orchestration.errors import (
    HeatError,
    InvalidTemplateVersion,
    NotSupported,
    StackValidationFailed,
)

OMIT = object()  # what a 2-argument `if` yields when false: the enclosing item is dropped


class Unresolved(Exception):
    """Raised by a validation-time resolver when a value needs a resource that does not exist yet."""


class Resolver(Protocol):
    def param(self, name: str) -> Any: ...
    def resource_ref(self, name: str) -> Any: ...
    def attribute(self, name: str, attr: str | None, path: list[Any]) -> Any: ...
    def condition(self, name: str) -> bool: ...
    def file(self, name: str) -> str: ...


Fn = Callable[["Functions", Any, Resolver], Any]

# Template versions in order; each adds functions to the previous one's set.
ORDER = ("2013-05-23", "2014-10-16", "2015-04-30", "2015-10-15", "2016-04-08", "2016-10-14", "2017-02-24",
         "2017-09-01", "2018-03-02", "2018-08-31", "2021-04-16")
CFN_FUNCTIONS = ("Ref", "Fn::GetAtt", "Fn::Join", "Fn::Select", "Fn::Split", "Fn::Replace", "Fn::Base64",
                 "Fn::GetAZs", "Fn::ResourceFacade", "Fn::MemberListToMap")
ADDED = {
    "2013-05-23": ("get_param", "get_resource", "get_attr", "list_join", "str_replace", "get_file",
                   "resource_facade"),
    "2015-04-30": ("repeat", "digest"),
    "2015-10-15": ("str_split",),
    "2016-04-08": ("map_merge",),
    "2016-10-14": ("yaql", "map_replace", "if"),
    "2017-02-24": ("filter", "str_replace_strict"),
    "2017-09-01": ("make_url", "list_concat", "list_concat_unique", "str_replace_vstrict", "contains"),
}
CONDITION_FUNCTIONS = {"2016-10-14": ("equals", "not", "and", "or", "get_param"), "2017-09-01": ("contains",)}


def at_least(version: str, minimum: str) -> bool:
    return ORDER.index(version) >= ORDER.index(minimum)


def _fail(name: str, message: str) -> HeatError:
    return StackValidationFailed(f'Arguments to "{name}" {message}')


def _text(value: Any, version: str) -> str:
    """How list_join/str_replace print a non-string value (JSON from 2015-10-15, as Heat does)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list) and at_least(version, "2015-10-15"):
        return json.dumps(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower() if at_least(version, "2015-10-15") else str(value)
    return str(value)


class Functions:
    """The function table of one template version, and the evaluator that uses it."""

    def __init__(self, version: str) -> None:
        self.version = version
        names: list[str] = []
        for v in ORDER:
            names += ADDED.get(v, ())
            if v == version:
                break
        self.table: dict[str, Fn] = {n: IMPLEMENTATIONS[n] for n in names}
        if version != "2013-05-23":
            for name in CFN_FUNCTIONS:
                self.table[name] = _removed(name)
        else:
            self.table.update({"Ref": _cfn_ref, "Fn::GetAtt": _cfn_getatt, "Fn::Join": _cfn_join,
                               "Fn::Select": _cfn_select, "Fn::Base64": lambda f, a, r: f.resolve(a, r)})
        self.condition_names: set[str] = set()
        for v in ORDER:
            if at_least(version, v):
                self.condition_names.update(CONDITION_FUNCTIONS.get(v, ()))

    # evaluation -------------------------------------------------------------------------------
    def call_of(self, snippet: Any) -> tuple[str, Any] | None:
        if isinstance(snippet, dict) and len(snippet) == 1:
            key = next(iter(snippet))
            if key in self.table:
                return key, snippet[key]
        return None

    def resolve(self, snippet: Any, resolver: Resolver) -> Any:
        call = self.call_of(snippet)
        if call is not None:
            return self.table[call[0]](self, call[1], resolver)
        if isinstance(snippet, dict):
            result = {}
            for key, value in snippet.items():
                resolved = self.resolve(value, resolver)
                if resolved is not OMIT:
                    result[key] = resolved
            return result
        if isinstance(snippet, list):
            return [item for item in (self.resolve(v, resolver) for v in snippet) if item is not OMIT]
        return snippet

    def condition(self, expr: Any, resolver: Resolver) -> bool:
        """A condition expression: a boolean, another condition's name, or equals/not/and/or/..."""
        if isinstance(expr, bool):
            return expr
        if isinstance(expr, str):
            if expr.lower() in ("true", "false"):
                return expr.lower() == "true"
            return resolver.condition(expr)
        if isinstance(expr, dict) and len(expr) == 1:
            name, args = next(iter(expr.items()))
            if name in self.condition_names:
                if name == "get_param":
                    return bool(_get_param(self, args, resolver))
                return bool(CONDITION_IMPLEMENTATIONS[name](self, args, resolver))
        raise StackValidationFailed(f"Invalid condition {expr!r}")

    # static analysis ---------------------------------------------------------------------------
    def references(self, snippet: Any) -> set[str]:
        """Names of the resources a snippet refers to through get_resource / get_attr (and CFN Ref)."""
        found: set[str] = set()
        self._walk(snippet, found)
        return found

    def _walk(self, snippet: Any, found: set[str]) -> None:
        call = self.call_of(snippet)
        if call is not None:
            name, args = call
            if name == "get_resource" and isinstance(args, str):
                found.add(args)
                return
            if name in ("get_attr", "Fn::GetAtt") and isinstance(args, list) and args and isinstance(args[0], str):
                found.add(args[0])
                for item in args[1:]:
                    self._walk(item, found)
                return
            if name == "Ref" and isinstance(args, str):
                found.add("\0ref:" + args)  # a parameter or a resource; the caller decides
                return
            self._walk(args, found)
            return
        if isinstance(snippet, dict):
            for value in snippet.values():
                self._walk(value, found)
        elif isinstance(snippet, list):
            for value in snippet:
                self._walk(value, found)


# the functions ---------------------------------------------------------------------------------
def _path(value: Any, path: list[Any], name: str) -> Any:
    for key in path:
        if isinstance(value, dict):
            value = value.get(str(key)) if str(key) in value else value.get(key)
        elif isinstance(value, list):
            try:
                value = value[int(key)]
            except (ValueError, IndexError):
                return None
        else:
            return None
    return value


def _get_param(f: Functions, args: Any, r: Resolver) -> Any:
    args = f.resolve(args, r)
    if isinstance(args, str):
        return r.param(args)
    if isinstance(args, list) and args and isinstance(args[0], str):
        return _path(r.param(args[0]), args[1:], "get_param")
    raise _fail("get_param", "must be a string or a list of a parameter name and a path")


def _get_resource(f: Functions, args: Any, r: Resolver) -> Any:
    if not isinstance(args, str):
        raise _fail("get_resource", "must be a resource name")
    return r.resource_ref(args)


def _get_attr(f: Functions, args: Any, r: Resolver) -> Any:
    if not isinstance(args, list) or not args or not isinstance(args[0], str):
        raise _fail("get_attr", "must be a list of a resource name, an attribute name and an optional path")
    rest = [f.resolve(a, r) for a in args[1:]]
    if not rest:
        if not at_least(f.version, "2015-10-15"):
            raise _fail("get_attr", "must be a list of a resource name, an attribute name and an optional path")
        return r.attribute(args[0], None, [])
    return r.attribute(args[0], str(rest[0]), rest[1:])


def _list_join(f: Functions, args: Any, r: Resolver) -> Any:
    args = f.resolve(args, r)
    if not isinstance(args, list) or len(args) < 2 or not isinstance(args[0], str):
        raise _fail("list_join", "must be a list of a delimiter and a list of strings")
    lists = args[1:]
    if len(lists) > 1 and not at_least(f.version, "2015-10-15"):
        raise _fail("list_join", "must be a list of a delimiter and a list of strings")
    items: list[str] = []
    for values in lists:
        if values is None:
            continue
        if not isinstance(values, list):
            raise _fail("list_join", "must be a list of a delimiter and a list of strings")
        items += [_text(v, f.version) for v in values]
    return args[0].join(items)


def _str_replace(strict: int) -> Fn:
    name = {0: "str_replace", 1: "str_replace_strict", 2: "str_replace_vstrict"}[strict]

    def run(f: Functions, args: Any, r: Resolver) -> Any:
        args = f.resolve(args, r)
        if not isinstance(args, dict) or "template" not in args or "params" not in args:
            raise _fail(name, 'must be a map with "template" and "params" keys')
        template, params = args["template"], args["params"]
        if not isinstance(template, str):
            raise _fail(name, '"template" must be a string')
        if not isinstance(params, dict):
            raise _fail(name, '"params" must be a map')
        missing = [k for k in params if strict and str(k) not in template]
        if missing:
            raise StackValidationFailed(f"The following params were not found in the template: {', '.join(missing)}")
        if strict == 2:
            empty = [k for k, v in params.items() if v in ("", None)]
            if empty:
                raise StackValidationFailed(f"The following params have empty values: {', '.join(empty)}")
        keys = sorted(params, key=lambda k: len(str(k)), reverse=True)
        pieces: list[Any] = [template]
        for key in keys:  # replace longest first, never inside text that a replacement produced
            value = _text(params[key], f.version)
            out: list[Any] = []
            for piece in pieces:
                if isinstance(piece, tuple):
                    out.append(piece)
                    continue
                parts = piece.split(str(key))
                for index, part in enumerate(parts):
                    if index:
                        out.append((value,))
                    out.append(part)
            pieces = out
        return "".join(p[0] if isinstance(p, tuple) else p for p in pieces)

    return run


def _str_split(f: Functions, args: Any, r: Resolver) -> Any:
    args = f.resolve(args, r)
    if not isinstance(args, list) or len(args) not in (2, 3) or not isinstance(args[0], str):
        raise _fail("str_split", "must be a list of a delimiter, a string and an optional index")
    if not isinstance(args[1], str):
        raise _fail("str_split", "must be a list of a delimiter, a string and an optional index")
    parts = args[1].split(args[0])
    if len(args) == 3:
        try:
            return parts[int(args[2])]
        except (ValueError, IndexError):
            raise StackValidationFailed(f"Incorrect index to \"str_split\" should be between 0 and "
                                        f"{len(parts) - 1}") from None
    return parts


def _repeat(f: Functions, args: Any, r: Resolver) -> Any:
    if not isinstance(args, dict) or "for_each" not in args or "template" not in args:
        raise _fail("repeat", 'must be a map with "for_each" and "template" keys')
    for_each = f.resolve(args["for_each"], r)
    if not isinstance(for_each, dict) or not all(isinstance(v, list) for v in for_each.values()):
        raise _fail("repeat", '"for_each" must be a map of lists')
    keys = list(for_each)
    permutations = args.get("permutations", True)
    combos = (itertools.product(*(for_each[k] for k in keys)) if permutations
              else zip(*(for_each[k] for k in keys), strict=False))

    def substitute(template: Any, mapping: dict[str, Any]) -> Any:
        if isinstance(template, str):
            for key, value in mapping.items():
                if template == key:
                    return value
            for key, value in mapping.items():
                template = template.replace(key, _text(value, f.version))
            return template
        if isinstance(template, dict):
            return {substitute(k, mapping): substitute(v, mapping) for k, v in template.items()}
        if isinstance(template, list):
            return [substitute(v, mapping) for v in template]
        return template

    return [f.resolve(substitute(args["template"], dict(zip(keys, combo, strict=True))), r) for combo in combos]


def _digest(f: Functions, args: Any, r: Resolver) -> Any:
    args = f.resolve(args, r)
    if not isinstance(args, list) or len(args) != 2 or not all(isinstance(a, str) for a in args):
        raise _fail("digest", "must be a list of an algorithm and a value")
    if args[0] not in hashlib.algorithms_available:
        raise StackValidationFailed(f"Algorithm must be one of {', '.join(sorted(hashlib.algorithms_guaranteed))}")
    return hashlib.new(args[0], args[1].encode()).hexdigest()


def _map_merge(f: Functions, args: Any, r: Resolver) -> Any:
    args = f.resolve(args, r)
    if not isinstance(args, list) or not all(isinstance(m, dict) or m is None for m in args):
        raise _fail("map_merge", "must be a list of maps")
    merged: dict[str, Any] = {}
    for item in args:
        merged.update(item or {})
    return merged


def _map_replace(f: Functions, args: Any, r: Resolver) -> Any:
    args = f.resolve(args, r)
    if not isinstance(args, list) or len(args) != 2 or not isinstance(args[0], dict) or not isinstance(args[1], dict):
        raise _fail("map_replace", "must be a list of a map and a map of replacements")
    keys, values = args[1].get("keys", {}) or {}, args[1].get("values", {}) or {}
    return {keys.get(k, k): values.get(v, v) if isinstance(v, str | int | float) else v for k, v in args[0].items()}


def _if(f: Functions, args: Any, r: Resolver) -> Any:
    two = at_least(f.version, "2021-04-16")
    if not isinstance(args, list) or len(args) not in ((2, 3) if two else (3,)):
        raise _fail("if", "must be a list of a condition, a value if true and a value if false")
    if f.condition(args[0], r):
        return f.resolve(args[1], r)
    return f.resolve(args[2], r) if len(args) == 3 else OMIT


def _equals(f: Functions, args: Any, r: Resolver) -> bool:
    args = f.resolve(args, r)
    if not isinstance(args, list) or len(args) != 2:
        raise _fail("equals", "must be a list of two values")
    return bool(args[0] == args[1])


def _not(f: Functions, args: Any, r: Resolver) -> bool:
    return not f.condition(args, r)


def _and(f: Functions, args: Any, r: Resolver) -> bool:
    if not isinstance(args, list) or len(args) < 2:
        raise _fail("and", "must be a list of at least two conditions")
    return all(f.condition(a, r) for a in args)


def _or(f: Functions, args: Any, r: Resolver) -> bool:
    if not isinstance(args, list) or len(args) < 2:
        raise _fail("or", "must be a list of at least two conditions")
    return any(f.condition(a, r) for a in args)


def _contains(f: Functions, args: Any, r: Resolver) -> bool:
    args = f.resolve(args, r)
    if not isinstance(args, list) or len(args) != 2 or not isinstance(args[1], list | str | dict):
        raise _fail("contains", "must be a list of a value and a sequence")
    return args[0] in args[1]


def _filter(f: Functions, args: Any, r: Resolver) -> Any:
    args = f.resolve(args, r)
    if not isinstance(args, list) or len(args) != 2 or not isinstance(args[1], list):
        raise _fail("filter", "must be a list of values to remove and a list")
    remove = args[0] if isinstance(args[0], list) else [args[0]]
    return [v for v in args[1] if v not in remove]


def _list_concat(unique: bool) -> Fn:
    name = "list_concat_unique" if unique else "list_concat"

    def run(f: Functions, args: Any, r: Resolver) -> Any:
        args = f.resolve(args, r)
        if not isinstance(args, list) or not all(isinstance(a, list) or a is None for a in args):
            raise _fail(name, "must be a list of lists")
        result: list[Any] = []
        for items in args:
            for item in items or []:
                if not unique or item not in result:
                    result.append(item)
        return result

    return run


def _make_url(f: Functions, args: Any, r: Resolver) -> Any:
    args = f.resolve(args, r)
    if not isinstance(args, dict) or "host" not in args:
        raise _fail("make_url", 'must be a map with at least a "host" key')
    url = f"{args.get('scheme', 'http')}://{args['host']}"
    if args.get("port") is not None:
        url += f":{args['port']}"
    path = str(args.get("path") or "")
    url += quote(path if path.startswith("/") else "/" + path)
    if args.get("query"):
        url += "?" + urlencode(args["query"])
    if args.get("fragment"):
        url += "#" + quote(str(args["fragment"]))
    return url


def _get_file(f: Functions, args: Any, r: Resolver) -> Any:
    if not isinstance(args, str):
        raise _fail("get_file", "must be a file name")
    return r.file(args)


def _unsupported(name: str) -> Fn:
    def run(f: Functions, args: Any, r: Resolver) -> Any:
        raise NotSupported(f'The function "{name}"')

    return run


def _removed(name: str) -> Fn:
    def run(f: Functions, args: Any, r: Resolver) -> Any:
        raise InvalidTemplateVersion(f'The function "{name}" is invalid in this version of HOT: use HOT functions.')

    return run


def _cfn_ref(f: Functions, args: Any, r: Resolver) -> Any:
    try:
        return r.param(args)
    except HeatError:
        return r.resource_ref(args)


def _cfn_getatt(f: Functions, args: Any, r: Resolver) -> Any:
    return _get_attr(f, args, r)


def _cfn_join(f: Functions, args: Any, r: Resolver) -> Any:
    return _list_join(f, args, r)


def _cfn_select(f: Functions, args: Any, r: Resolver) -> Any:
    args = f.resolve(args, r)
    try:
        return args[1][int(args[0]) if isinstance(args[1], list) else args[0]]
    except (IndexError, KeyError, TypeError, ValueError):
        return ""


IMPLEMENTATIONS: dict[str, Fn] = {
    "get_param": _get_param, "get_resource": _get_resource, "get_attr": _get_attr, "list_join": _list_join,
    "str_replace": _str_replace(0), "str_replace_strict": _str_replace(1), "str_replace_vstrict": _str_replace(2),
    "get_file": _get_file, "resource_facade": _unsupported("resource_facade"), "repeat": _repeat,
    "digest": _digest, "str_split": _str_split, "map_merge": _map_merge, "yaql": _unsupported("yaql"),
    "map_replace": _map_replace, "if": _if, "filter": _filter, "make_url": _make_url,
    "list_concat": _list_concat(False), "list_concat_unique": _list_concat(True), "contains": _contains,
}
CONDITION_IMPLEMENTATIONS: dict[str, Fn] = {"equals": _equals, "not": _not, "and": _and, "or": _or,
                                            "contains": _contains}
