"""The contract files (testkit/contracts/*.json, JSON Schema 2020-12), checked by the loopback fakes.

Each file is one body of a Halo or SIGNL4 call, written by hand from the source its header
names (docs/calls.md lists them). The fakes check every request body they get against its file
and answer 400 with the violations; `Watch` keeps what was refused, so a test fixture can fail
the test at teardown even when the relay turned that 400 into a 502 or a poison record.

A violation names the place and the rule broken, never the value: the token form carries the
client secret, and no secret may reach a test's output.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path
from typing import Any

CONTRACTS = Path(__file__).parent / "contracts"


@cache
def _validator(name: str) -> Any:
    """The validator of testkit/contracts/<name>.json (jsonschema loads on first use)."""
    from jsonschema import Draft202012Validator

    schema = json.loads((CONTRACTS / f"{name}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def names() -> list[str]:
    """Every contract file's name, without .json."""
    return sorted(path.stem for path in CONTRACTS.glob("*.json"))


def violations(name: str, body: Any) -> list[str]:
    """How `body` breaks contract `name`: one line per error, empty when it conforms."""
    errors = sorted(_validator(name).iter_errors(body), key=lambda e: list(e.absolute_path))
    return [f"{_where(error)}: {_rule(error)}" for error in errors]


def _where(error: Any) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.path)
    return "$" + path


def _rule(error: Any) -> str:
    """The rule broken, in words that never quote the offending value."""
    keyword, expected = error.validator, error.validator_value
    if "propertyNames" in error.schema_path:  # the instance is a field's name, not its value
        return f"field name {json.dumps(error.instance)} is not allowed"
    if keyword == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown field(s) {extra}"
    if keyword == "required":
        missing = [name for name in expected if name not in error.instance]
        return f"missing field(s) {missing}"
    if keyword in ("enum", "const", "type", "minimum", "maximum", "minItems", "minLength"):
        return f"must satisfy {keyword} {json.dumps(expected)}"
    if keyword in ("anyOf", "oneOf") and error.context:
        return f"{keyword}: " + "; or ".join(sorted({_rule(e) for e in error.context}))
    return f"fails {keyword}"


class Watch:
    """What one fake refused. A test that sends a wrong body on purpose says so first
    (`expect_violations()`), and then must see one; any other refusal fails the test."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.expected = False
        self._lock = threading.Lock()

    def check(self, name: str, body: Any, call: str) -> list[str]:
        """The violations of `body` (sent in `call`) against contract `name`, recorded."""
        found = violations(name, body)
        for line in found:
            self.record(f"{call}: {line}")
        return found

    def record(self, violation: str) -> None:
        with self._lock:
            self.violations.append(violation)

    def clear(self) -> None:
        with self._lock:
            self.violations.clear()

    def expect_violations(self) -> None:
        self.expected = True

    def verdict(self, fake: str) -> str | None:
        """Why the test fails at teardown, or None: a refusal nobody expected, or an expected
        refusal that never came."""
        with self._lock:
            seen = list(self.violations)
        if seen and not self.expected:
            return f"{fake} refused a body that breaks its contract:\n" + "\n".join(seen)
        if self.expected and not seen:
            return f"the test expected {fake} to refuse a body, and none was refused"
        return None
