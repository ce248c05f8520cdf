"""Bicep's resource type check, reproduced offline over pycep's parse of a template.

The Bicep compiler types every resource body against its resource type data (Azure/bicep-types-az,
`generated/<rp>/<namespace>/<api-version>/types.json`). The data this project deploys against is
vendored in tests/infra/infra_types/ (SOURCES.txt names the commit and blob of each file). This module
reads it and reports, for every resource of a parsed template:

- unknown-resource-type: no vendored type for `type@apiVersion`;
- unknown-property:      a property the type does not declare (and no additionalProperties);
- wrong-type:            string/int/bool/object/array mismatch, or a literal outside a string
                         literal union (enum) or a discriminator's cases;
- read-only:             a property the type marks ReadOnly (id, status, principalId, ...);
- missing-required:      a Required property absent from an object literal;
- constraint:            a literal outside the type's min/max length or value, or pattern.

What is checked is what Bicep can know at compile time: literals fully; a parameter by its
declared type (and each of its @allowed values); a variable by its value; an interpolated string
or a known function's result by its type; a condition `c ? a : b` on both branches. Property
reads of other resources and unknown functions are not typed here (Bicep may know more).

pycep drops the quotes of string literals, so a bare string is a parameter or variable when one
of that name exists, and a literal otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

TYPES_ROOT = Path(__file__).resolve().parent / "infra_types"

# ObjectTypePropertyFlags of the bicep-types format.
REQUIRED = 1
READ_ONLY = 2

# Resource-level keys that belong to the Bicep language, not to the resource's type body.
LANGUAGE_KEYS = frozenset({"parent", "scope", "dependsOn"})

FindingKind = Literal[
    "unknown-resource-type",
    "unknown-property",
    "wrong-type",
    "read-only",
    "missing-required",
    "constraint",
]

# pycep function names -> the Bicep type of their result (functions not listed are untyped).
FUNCTION_RESULTS: Mapping[str, str] = {
    "format": "string",
    "guid": "string",
    "unique_string": "string",
    "to_lower": "string",
    "to_upper": "string",
    "string": "string",
    "substring": "string",
    "replace": "string",
    "trim": "string",
    "uri": "string",
    "resource_id": "string",
    "subscription_resource_id": "string",
    "int": "int",
    "length": "int",
    "empty": "bool",
    "starts_with": "bool",
    "ends_with": "bool",
    "contains": "bool",
    "bool": "bool",
    "equals": "bool",
}
# pycep operators whose result is a bool.
BOOL_OPERATORS = frozenset(
    {
        "not",
        "and",
        "or",
        "equals",
        "not_equals",
        "greater_than",
        "greater_than_or_equals",
        "less_than",
        "less_than_or_equals",
    }
)
# A pycep parameter type -> the Bicep primitive.
PARAMETER_TYPES: Mapping[str, str] = {
    "string": "string",
    "securestring": "string",
    "int": "int",
    "bool": "bool",
    "object": "object",
    "secureobject": "object",
    "array": "array",
}


@dataclass(frozen=True, order=True)
class Finding:
    resource: str  # symbolic name in the template
    path: str  # property path inside the resource body, e.g. properties.siteConfig.ftpsState
    kind: FindingKind
    detail: str


# --------------------------------------------------------------------------------------------
# Type data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeRef:
    """One entry of one types.json file."""

    table: tuple[Mapping[str, Any], ...]
    index: int

    @property
    def node(self) -> Mapping[str, Any]:
        return self.table[self.index]

    def follow(self, ref: Mapping[str, Any]) -> TypeRef:
        target = ref["$ref"]
        if not target.startswith("#/"):
            raise ValueError(f"cross-file type reference not supported: {target}")
        return TypeRef(self.table, int(target[2:]))


@dataclass(frozen=True)
class TypeLibrary:
    """Resource types by `namespace/type@api-version` (lower case), with the file each came from."""

    resources: Mapping[str, TypeRef]
    files: Mapping[str, Path]

    def resource(self, type_: str, api_version: str) -> TypeRef | None:
        return self.resources.get(f"{type_}@{api_version}".lower())


def load_library(root: Path = TYPES_ROOT) -> TypeLibrary:
    resources: dict[str, TypeRef] = {}
    files: dict[str, Path] = {}
    for path in sorted(root.rglob("types.json")):
        table = tuple(json.loads(path.read_text(encoding="utf-8")))
        for index, node in enumerate(table):
            if node["$type"] == "ResourceType":
                key = node["name"].lower()
                if key in resources:
                    raise ValueError(f"{node['name']} is declared twice in {root}")
                resources[key] = TypeRef(table, index).follow(node["body"])
                files[key] = path
    return TypeLibrary(resources, files)


# --------------------------------------------------------------------------------------------
# What the template says about a value
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """A literal: its Python value (str, int, bool, list of nodes, dict of nodes, or None)."""

    value: Any


@dataclass(frozen=True)
class Typed:
    """Only the type is known (an interpolation, a function result, a parameter)."""

    kind: str  # string | int | bool | object | array
    allowed: tuple[Any, ...] | None = None  # a parameter's @allowed values
    origin: str = ""


@dataclass(frozen=True)
class Either:
    """`condition ? a : b`: both branches must fit."""

    branches: tuple[Any, ...]


@dataclass(frozen=True)
class Untyped:
    """Not typed here (another resource's property, an unlisted function)."""


Shape = Known | Typed | Either | Untyped


def _kind_of_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _is_call(node: Any, key: str, arguments: str) -> bool:
    """pycep's form of a function call or operator, `{key: {type, <arguments>}}`; an object
    literal with a property of that name (an alert criterion's `operator: 'GreaterThan'`) is not."""
    return (
        isinstance(node, dict)
        and len(node) == 1
        and isinstance(node.get(key), dict)
        and {"type", arguments} <= set(node[key])
    )


class _Shaper:
    def __init__(self, template: Mapping[str, Any]) -> None:
        self.parameters: Mapping[str, Any] = template.get("parameters") or {}
        self.variables: Mapping[str, Any] = template.get("variables") or {}

    def shape(self, node: Any, seen: frozenset[str] = frozenset()) -> Shape:
        if isinstance(node, str):
            if "${" in node:
                return Typed("string", origin="interpolation")
            if node in self.parameters:
                parameter = self.parameters[node]
                allowed = next(
                    (d["argument"] for d in parameter["decorators"] if d["type"] == "allowed"),
                    None,
                )
                return Typed(
                    PARAMETER_TYPES.get(str(parameter["type"]).lower(), "any"),
                    tuple(allowed) if allowed is not None else None,
                    origin=f"parameter {node}",
                )
            if node in self.variables and node not in seen:
                return self.shape(self.variables[node]["value"], seen | {node})
            return Known(node)
        if _is_call(node, "function", "parameters"):
            result = FUNCTION_RESULTS.get(node["function"]["type"])
            return Typed(result, origin=f"{node['function']['type']}()") if result else Untyped()
        if _is_call(node, "operator", "operands"):
            kind, operands = node["operator"]["type"], node["operator"]["operands"]
            if kind == "conditional":
                return Either((operands["true_value"], operands["false_value"]))
            if kind in BOOL_OPERATORS:
                return Typed("bool", origin=kind)
            if kind == "minus" and isinstance(operands.get("integer_value"), int):
                return Known(-operands["integer_value"])
            return Untyped()
        return Known(node)


# --------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------


def _strip_key(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def _expected_kinds(ref: TypeRef) -> set[str]:
    node = ref.node
    match node["$type"]:
        case "StringType" | "StringLiteralType":
            return {"string"}
        case "IntegerType":
            return {"int"}
        case "BooleanType":
            return {"bool"}
        case "ObjectType" | "DiscriminatedObjectType":
            return {"object"}
        case "ArrayType":
            return {"array"}
        case "UnionType":
            return set().union(*(_expected_kinds(ref.follow(e)) for e in node["elements"]))
        case "NullType":
            return {"null"}
    return {"any"}


def _describe(ref: TypeRef) -> str:
    node = ref.node
    match node["$type"]:
        case "StringLiteralType":
            return repr(node["value"])
        case "UnionType":
            return " | ".join(_describe(ref.follow(e)) for e in node["elements"])
        case "ObjectType" | "DiscriminatedObjectType":
            return node.get("name") or "object"
        case "ArrayType":
            return f"{_describe(ref.follow(node['itemType']))}[]"
    return node["$type"].removesuffix("Type").lower()


class _Checker:
    def __init__(self, shaper: _Shaper, resource: str) -> None:
        self.shaper = shaper
        self.resource = resource
        self.findings: list[Finding] = []

    def report(self, path: str, kind: FindingKind, detail: str) -> None:
        self.findings.append(Finding(self.resource, path, kind, detail))

    def value(self, node: Any, ref: TypeRef, path: str) -> None:
        shape = self.shaper.shape(node)
        if isinstance(shape, Untyped) or ref.node["$type"] == "AnyType":
            return
        if isinstance(shape, Either):
            for branch in shape.branches:
                self.value(branch, ref, path)
            return
        expected = _expected_kinds(ref)
        if isinstance(shape, Typed):
            if shape.kind not in expected and "any" not in expected and shape.kind != "any":
                self.report(
                    path, "wrong-type", f"{shape.origin} is {shape.kind}, expected {_describe(ref)}"
                )
            elif shape.allowed is not None:
                for allowed in shape.allowed:
                    self.literal(allowed, ref, f"{path} (@allowed {allowed!r} of {shape.origin})")
            return
        self.literal(shape.value, ref, path)

    def literal(self, value: Any, ref: TypeRef, path: str) -> None:
        node = ref.node
        kind = _kind_of_literal(value)
        match node["$type"]:
            case "UnionType":
                self.union(value, ref, path)
                return
            case "AnyType":
                return
        if kind not in _expected_kinds(ref):
            self.report(path, "wrong-type", f"{value!r} is {kind}, expected {_describe(ref)}")
            return
        match node["$type"]:
            case "StringLiteralType":
                if value != node["value"]:
                    self.report(path, "wrong-type", f"{value!r}, expected {node['value']!r}")
            case "StringType":
                self.bounds(len(value), node, "minLength", "maxLength", path, "length")
                pattern = node.get("pattern")
                if pattern and not re.search(pattern, value):
                    self.report(path, "constraint", f"{value!r} does not match {pattern}")
            case "IntegerType":
                self.bounds(value, node, "minValue", "maxValue", path, "value")
            case "ArrayType":
                self.bounds(len(value), node, "minLength", "maxLength", path, "length")
                item = ref.follow(node["itemType"])
                for index, element in enumerate(value):
                    self.value(element, item, f"{path}[{index}]")
            case "ObjectType":
                self.object(
                    value, self.properties(ref), node.get("additionalProperties"), ref, path
                )
            case "DiscriminatedObjectType":
                self.discriminated(value, ref, path)

    def bounds(
        self, measure: int, node: Mapping[str, Any], low: str, high: str, path: str, what: str
    ) -> None:
        if low in node and measure < node[low]:
            self.report(path, "constraint", f"{what} {measure} below {low} {node[low]}")
        if high in node and measure > node[high]:
            self.report(path, "constraint", f"{what} {measure} above {high} {node[high]}")

    def union(self, value: Any, ref: TypeRef, path: str) -> None:
        members = [ref.follow(e) for e in ref.node["elements"]]
        attempts: list[list[Finding]] = []
        for member in members:
            trial = _Checker(self.shaper, self.resource)
            trial.literal(value, member, path)
            if not trial.findings:
                return
            attempts.append(trial.findings)
        # One member of the literal's kind (e.g. the only object in the union): its findings.
        same_kind = [
            found
            for member, found in zip(members, attempts, strict=True)
            if _kind_of_literal(value) in _expected_kinds(member)
            and member.node["$type"] != "StringLiteralType"
        ]
        if len(same_kind) == 1:
            self.findings.extend(same_kind[0])
            return
        self.report(path, "wrong-type", f"{value!r}, expected {_describe(ref)}")

    def properties(self, ref: TypeRef) -> dict[str, tuple[TypeRef, int]]:
        return {
            name: (ref.follow(prop["type"]), prop.get("flags", 0))
            for name, prop in (ref.node.get("properties") or {}).items()
        }

    def object(
        self,
        value: Mapping[str, Any],
        declared: Mapping[str, tuple[TypeRef, int]],
        additional: Mapping[str, Any] | None,
        ref: TypeRef,
        path: str,
        skip: Iterable[str] = (),
    ) -> None:
        by_lower = {name.lower(): name for name in declared}
        given = set()
        for raw_key, item in value.items():
            key = _strip_key(raw_key)
            if key in skip:
                continue
            where = f"{path}.{key}" if path else key
            name = by_lower.get(key.lower())
            if name is None:
                if additional is not None:
                    self.value(item, ref.follow(additional), where)
                else:
                    self.report(where, "unknown-property", f"not a property of {_describe(ref)}")
                continue
            given.add(name)
            prop_ref, flags = declared[name]
            if flags & READ_ONLY:
                self.report(where, "read-only", f"{_describe(ref)}.{name} is read-only")
                continue
            self.value(item, prop_ref, where)
        for name, (_, flags) in declared.items():
            if flags & REQUIRED and not flags & READ_ONLY and name not in given:
                where = f"{path}.{name}" if path else name
                self.report(where, "missing-required", f"{_describe(ref)} requires {name}")

    def discriminated(
        self, value: Mapping[str, Any], ref: TypeRef, path: str, skip: Iterable[str] = ()
    ) -> None:
        node = ref.node
        discriminator = node["discriminator"]
        base = {
            name: (ref.follow(prop["type"]), prop.get("flags", 0))
            for name, prop in (node.get("baseProperties") or {}).items()
        }
        keys = {_strip_key(k): v for k, v in value.items()}
        where = f"{path}.{discriminator}" if path else discriminator
        if discriminator not in keys:
            self.report(where, "missing-required", f"{_describe(ref)} requires {discriminator}")
            return
        case = self.shaper.shape(keys[discriminator])
        if not isinstance(case, Known):
            return  # the case is not known at compile time; Bicep cannot pick one either
        if case.value not in node["elements"]:
            cases = ", ".join(map(repr, node["elements"]))
            self.report(where, "wrong-type", f"{case.value!r}, expected one of {cases}")
            return
        element = ref.follow(node["elements"][case.value])
        self.object(
            value,
            {**base, **self.properties(element)},
            element.node.get("additionalProperties"),
            element,
            path,
            skip,
        )


def _resources(template: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, resource in (template.get("resources") or {}).items():
        if resource.get("existing"):
            continue
        config = resource["config"]
        yield name, config["config"] if "condition" in config else config


def check_template(template: Mapping[str, Any], library: TypeLibrary) -> list[Finding]:
    """Every finding over every (non-`existing`) resource of a pycep-parsed template."""
    findings: list[Finding] = []
    shaper = _Shaper(template)
    for name, body in _resources(template):
        resource = template["resources"][name]
        body_ref = library.resource(resource["type"], resource["api_version"])
        if body_ref is None:
            findings.append(
                Finding(
                    name,
                    "",
                    "unknown-resource-type",
                    f"no vendored type data for {resource['type']}@{resource['api_version']}",
                )
            )
            continue
        checker = _Checker(shaper, name)
        if body_ref.node["$type"] == "DiscriminatedObjectType":
            checker.discriminated(body, body_ref, "", skip=LANGUAGE_KEYS)
        else:
            checker.object(
                body,
                checker.properties(body_ref),
                body_ref.node.get("additionalProperties"),
                body_ref,
                "",
                skip=LANGUAGE_KEYS,
            )
        findings.extend(checker.findings)
    return sorted(findings)


def resource_types(template: Mapping[str, Any]) -> set[str]:
    """`type@apiVersion` (lower case) of every resource the template declares."""
    return {
        f"{res['type']}@{res['api_version']}".lower()
        for res in (template.get("resources") or {}).values()
    }
