"""infra/main.bicep and its local modules, read with pycep and flattened into one template.

main.bicep declares no resource: it takes the deployment parameters and composes
infra/modules/*.bicep (`module x './modules/y.bicep'`). The offline checks want to see the whole
deployment as one template, as it was when it was one file, so this module merges them:

- parameters: main.bicep's (the deployment's). A module parameter must be given the main (or
  parent) template's symbol of the same name, or another module's output whose value is that
  name; either way it is the same value in one namespace. Anything else is refused.
- variables, resources: the union over all files; a name declared twice with different values
  is refused. A resource a module names as `existing` under the symbol of one another module
  declares is that resource (its type, name and parent must agree) and is dropped; an `existing`
  reference to nothing the deployment declares stays (`existing` set).
- outputs: main.bicep's, with `<module>.outputs.<name>` replaced by that output's value.
- dependencies: each resource of a module depends on every resource of the modules that module
  waits for (its `dependsOn`, or an output it reads), as ARM orders nested deployments; a
  `dependsOn` entry naming a module becomes that module's resources.

`module_files(main)` lists every Bicep file the deployment is made of, for checks that read text.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
MAIN_BICEP = ROOT / "infra" / "main.bicep"

_OUTPUT_TEXT = re.compile(r"\$\{(\w+)\.outputs\.(\w+)\}")


class TemplateError(ValueError):
    """The files cannot be read as one deployment (a module the merge would misread)."""


def parse(path: Path) -> dict[str, Any]:
    """One file, as checkov's parser reads it (a fresh copy: callers may change it)."""
    return copy.deepcopy(_parse_text(path.read_text(encoding="utf-8")))


@functools.lru_cache(maxsize=32)
def _parse_text(text: str) -> dict[str, Any]:
    """pycep takes seconds per file; the infra tests read the same files many times."""
    return BicepParser().parse(text=text)


def module_files(main: Path = MAIN_BICEP) -> list[Path]:
    """main.bicep and every local module it uses, recursively, each once, main first."""
    found = [main]
    for module in (parse(main).get("modules") or {}).values():
        for path in module_files(_module_path(main, module)):
            if path not in found:
                found.append(path)
    return found


def body(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A resource's object; a conditional resource (`= if (...) {...}`) nests it once more."""
    config = resource["config"]
    return config["config"] if "condition" in config else config


def load_template(main: Path = MAIN_BICEP) -> dict[str, Any]:
    """The deployment as one pycep template (see the module docstring for the merge)."""
    return _flatten(main)


# --------------------------------------------------------------------------------------------


def _module_path(parent: Path, module: Mapping[str, Any]) -> Path:
    if module.get("type") != "local":
        raise TemplateError(f"{parent.name}: only local modules (checkov cannot see into {module})")
    return (parent.parent / module["detail"]["path"]).resolve()


def _output_value(outputs: Mapping[str, Any], symbol: str, name: str) -> Any:
    if symbol not in outputs or name not in outputs[symbol]:
        raise TemplateError(f"{symbol}.outputs.{name} is not an output of module {symbol}")
    return outputs[symbol][name]


def _as_text(node: Any) -> str:
    """An output value as it reads inside `${...}`: a name or a property path."""
    if isinstance(node, str):
        return node
    operator = node.get("operator") if isinstance(node, dict) else None
    if operator and operator["type"] == "property_accessor":
        operands = operator["operands"]
        return f"{operands['operand_1']}.{_as_text(operands['operand_2'])}"
    raise TemplateError(f"cannot inline output value {node!r} into a string")


def _output_reference(node: Any) -> tuple[str, str] | None:
    """`m.outputs.x` as pycep parses it -> ('m', 'x')."""
    try:
        operands = node["operator"]["operands"]
        inner = operands["operand_2"]["operator"]["operands"]
    except (KeyError, TypeError):
        return None
    if node["operator"]["type"] != "property_accessor" or inner["operand_1"] != "outputs":
        return None
    if not isinstance(inner["operand_2"], str):
        return None
    return operands["operand_1"], inner["operand_2"]


def _inline(node: Any, outputs: Mapping[str, Any]) -> Any:
    """`node` with every `<module>.outputs.<name>` replaced by that output's value."""
    reference = _output_reference(node)
    if reference:
        return _output_value(outputs, *reference)
    if isinstance(node, str):
        return _OUTPUT_TEXT.sub(
            lambda m: "${" + _as_text(_output_value(outputs, m[1], m[2])) + "}", node
        )
    if isinstance(node, dict):
        return {key: _inline(value, outputs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, outputs) for item in node]
    return node


def _modules_read(node: Any, modules: set[str]) -> set[str]:
    """The modules whose outputs an expression reads (ARM waits for them)."""
    text = json.dumps(node)
    read = {m for m in modules if re.search(rf'\$\{{{m}\.outputs\.|"operand_1": "{m}"', text)}
    return read


def _merge(into: dict[str, Any], section: str, name: str, value: Any, *, where: Path) -> None:
    known = into.setdefault(section, {})
    if name in known and known[name] != value:
        raise TemplateError(f"{where.name}: {section[:-1]} {name} is declared twice, differently")
    known[name] = value


def _merge_resource(into: dict[str, Any], name: str, resource: Any, where: Path) -> None:
    known = into["resources"]
    old = known.get(name)
    if old is None:
        known[name] = resource
        return
    if not (old.get("existing") or resource.get("existing")):
        raise TemplateError(f"{where.name}: resource {name} is declared twice")
    declared, reference = (resource, old) if old.get("existing") else (old, resource)
    _check_same(declared, reference, name)
    known[name] = declared


def _check_same(declared: Mapping[str, Any], reference: Mapping[str, Any], name: str) -> None:
    """An `existing` reference names the very resource declared under its symbol."""
    for key in ("type", "api_version"):
        if declared[key] != reference[key]:
            raise TemplateError(f"{name}: {key} {reference[key]} != declared {declared[key]}")
    for key in ("name", "parent"):
        if body(declared).get(key) != body(reference).get(key):
            raise TemplateError(f"existing {name}: {key} differs from the declared resource's")


def _is_secure(parameter: Mapping[str, Any]) -> bool:
    return any(d["type"] == "secure" for d in parameter["decorators"])


def _check_alias(flat: Mapping[str, Any], value: Any, name: str, parameter: Any) -> None:
    """A module parameter is the parent's symbol of the same name, and secure if that is."""
    if value != name:
        raise TemplateError(
            f"module parameter {name} is given {value!r}; give it the symbol (or an output whose"
            " value is the symbol) of the same name"
        )
    if name in flat["parameters"]:
        if _is_secure(flat["parameters"][name]) and not _is_secure(parameter):
            raise TemplateError(f"module parameter {name} carries a secure value: @secure() it")
    elif name not in flat["variables"]:
        raise TemplateError(f"module parameter {name}: no parameter or variable of that name")


def _flatten(path: Path) -> dict[str, Any]:
    template = parse(path)
    flat: dict[str, Any] = {
        "globals": template.get("globals"),
        "parameters": dict(template.get("parameters") or {}),
        "variables": dict(template.get("variables") or {}),
        "resources": dict(template.get("resources") or {}),
        "outputs": {},
        "modules": {},
    }
    outputs: dict[str, dict[str, Any]] = {}
    members: dict[str, list[str]] = {}  # module symbol -> the resources it deploys
    for symbol, module in (template.get("modules") or {}).items():
        child_path = _module_path(path, module)
        child = _flatten(child_path)
        config = module["config"]
        given = _inline(config.get("params") or {}, outputs)
        for name, parameter in child["parameters"].items():
            if name not in given and parameter["default"] is None:
                raise TemplateError(f"{path.name}: module {symbol} needs parameter {name}")
            _check_alias(flat, given.get(name, parameter["default"]), name, parameter)
        waits_for = set(config.get("dependsOn") or []) | _modules_read(
            config.get("params") or {}, set(members)
        )
        before = sorted({r for m in waits_for for r in members.get(m, [m])})
        for name, variable in child["variables"].items():
            _merge(flat, "variables", name, variable, where=child_path)
        deployed = []
        for name, resource in child["resources"].items():
            if not resource.get("existing") and before:
                target = body(resource)
                target["dependsOn"] = [*target.get("dependsOn", []), *before]
            if not resource.get("existing"):
                deployed.append(name)
            _merge_resource(flat, name, resource, child_path)
        members[symbol] = deployed
        outputs[symbol] = {name: o["value"] for name, o in child["outputs"].items()}
        flat["modules"][symbol] = {"path": module["detail"]["path"]}
    for resource in flat["resources"].values():
        target = body(resource)
        if "dependsOn" in target:
            target["dependsOn"] = _expand(target["dependsOn"], members)
    flat["outputs"] = {
        name: {**output, "value": _inline(output["value"], outputs)}
        for name, output in (template.get("outputs") or {}).items()
    }
    return flat


def _expand(depends_on: list[Any], members: Mapping[str, list[str]]) -> list[Any]:
    expanded: list[Any] = []
    for entry in depends_on:
        for name in members.get(entry, [entry]) if isinstance(entry, str) else [entry]:
            if name not in expanded:
                expanded.append(name)
    return expanded
