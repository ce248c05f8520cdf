"""`python -m shared <command>`: the operator's commands (preview, check, send-test, halo-setup,
heartbeat). A thin shell: the work is in shared/ops/preview.py, check.py, send_test.py,
halo_setup.py and heartbeat.py. Settings come from the environment, then from
local.settings.json's Values in the current folder (the environment wins), as for `serve`.

Never imported by function_app.py. `serve` moved to `python -m devhost serve` (not deployed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from shared.ops.preview import Previous
    from shared.settings import RelaySettings

SERVE_MOVED = "The local host moved out of shared/: run `python -m devhost serve`."


def environment(settings_file: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment, plus local.settings.json's Values where a name is not set already.
    A file that cannot be read is reported by path and position only (it holds secrets)."""
    env = dict(os.environ if environ is None else environ)
    if not settings_file.is_file():
        return env
    try:
        values = json.loads(settings_file.read_text(encoding="utf-8-sig")).get("Values", {})
    except (OSError, ValueError, AttributeError) as error:
        where = f" (line {error.lineno})" if isinstance(error, json.JSONDecodeError) else ""
        raise SystemExit(f"error: {settings_file}: not a readable settings file{where}") from None
    for name, value in values.items() if isinstance(values, dict) else ():
        if isinstance(value, str):
            env.setdefault(name, value)
    return env


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared",
        description="Operator commands for the HaloPSA -> SIGNL4 relay. Settings: the "
        "environment, then local.settings.json (see docs/settings.md).",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        default=Path("local.settings.json"),
        help="settings file whose Values apply where the environment has none (default: %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    _add_read_only_commands(commands)
    _add_sending_commands(commands)
    return parser


def _add_read_only_commands(commands: argparse._SubParsersAction) -> None:
    """preview and check: they read a body or the settings and send nothing."""
    preview = commands.add_parser(
        "preview",
        help="show what the relay would decide and send for a Halo body (sends nothing)",
        description="Decision, reason and the exact SIGNL4 payload for a Halo body, as POST "
        "/api/halopsa would build it. No network call, no ledger.",
    )
    preview.add_argument("file", help="the body: a JSON file, or - for standard input")
    preview.add_argument(
        "--query",
        default="",
        help="the request's query string, e.g. 'ExtIDParam=X-S4-ExternalID&ResolvedStatus=Closed'",
    )
    preview.add_argument(
        "--previous",
        metavar="FILE",
        help="the ticket's previous Halo body (a JSON file): the body is judged from the state "
        "the relay would hold after it, so an escalation shows",
    )
    preview.add_argument(
        "--alert",
        choices=("open", "acknowledged", "resolved", "closed-in-signl4"),
        help="with --previous: the ticket's alert instead of the one derived (closed-in-signl4: "
        "SIGNL4 closed it, the Halo ticket stays open)",
    )
    preview.add_argument("--json", action="store_true", help="print the report as JSON")

    check = commands.add_parser(
        "check",
        help="validate every setting; exit 1 naming each bad one (never its value)",
        description="Validates every setting. --live also reads the ledger table (storage "
        "reachable with these credentials). Sends nothing to SIGNL4.",
    )
    check.add_argument("--live", action="store_true", help="also check storage reachability")


def _add_sending_commands(commands: argparse._SubParsersAction) -> None:
    """send-test, halo-setup and heartbeat: they page SIGNL4 or configure what will."""
    send = commands.add_parser(
        "send-test",
        help="raise one labelled test alert in SIGNL4 and resolve it",
        description="Raises one test alert ('test' in the title, the relay's version and the "
        "time) and resolves it after RELAY_TEST_RESOLVE_SECONDS (default 60).",
    )
    send.add_argument("--keep", action="store_true", help="leave the test alert open")
    send.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    setup = commands.add_parser(
        "halo-setup",
        help="print what to configure in HaloPSA (and SIGNL4) for a deployed relay",
        description="Prints the webhook, the guide-style integration and the SIGNL4 outbound "
        "webhook for the relay at --url; --import-file DIR writes Halo import files.",
    )
    setup.add_argument(
        "--url", required=True, help="function app base URL, https://<app>.azurewebsites.net"
    )
    setup.add_argument(
        "--import-file", type=Path, metavar="DIR", help="write Halo import files here"
    )
    setup.add_argument(
        "--token", help="the inbound token to put in the method path (else a placeholder)"
    )

    commands.add_parser(
        "heartbeat",
        help="one heartbeat to SIGNL4_HEARTBEAT_URL if the relay is healthy (as the timer does)",
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    confirm: Callable[[str], str] = input,
    sleep: Callable[[float], None] | None = None,
) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    out = stdout or sys.stdout
    if args_list[:1] == ["serve"]:
        print(SERVE_MOVED, file=sys.stderr)
        return 2
    args = build_parser().parse_args(args_list)
    env = environment(args.settings, environ)
    if args.command == "halo-setup":
        return _halo_setup(args, out)
    if args.command == "preview":
        return _preview(args, env, stdin or sys.stdin, out)
    if args.command == "check":
        return _check(args, env, out)
    if args.command == "send-test":
        return _send_test(args, env, out, confirm=confirm, sleep=sleep)
    return _heartbeat(env, out)


def _settings_or_exit(env: Mapping[str, str]) -> RelaySettings:
    from shared.settings import RelaySettings, SettingsError

    try:
        return RelaySettings.from_env(env)
    except SettingsError as error:
        raise SystemExit(f"error: {error} (run `python -m shared check`)") from None


def _preview(args: argparse.Namespace, env: Mapping[str, str], stdin: TextIO, out: TextIO) -> int:
    from shared.ops.preview import parse_query, preview_body, render_json, render_text

    if args.file == "-":
        body = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode("utf-8")
    else:
        try:
            body = Path(args.file).read_bytes()
        except OSError as error:
            print(f"error: cannot read {args.file}: {error.strerror}", file=sys.stderr)
            return 2
    settings, query = _settings_or_exit(env), parse_query(args.query)
    try:
        previous = _previous(args, settings, query)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = preview_body(body, settings, query, previous=previous)
    out.write(render_json(report) + "\n" if args.json else render_text(report))
    return 0


def _previous(
    args: argparse.Namespace, settings: RelaySettings, query: Mapping[str, str]
) -> Previous | None:
    """--previous's state (None without it). ValueError, saying what is wrong with the file or
    the body in it, as the relay would answer it: the caller exits 2, the preview not shown."""
    from shared.errors import RelayError
    from shared.ops.preview import previous_state

    if args.previous is None:
        if args.alert is not None:
            raise ValueError("--alert needs --previous FILE (the ticket's previous body)")
        return None
    if args.previous == "-":
        raise ValueError("--previous takes a file: standard input is for the body")
    try:
        body = Path(args.previous).read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read --previous {args.previous}: {error.strerror}") from None
    try:
        return previous_state(body, settings, query, alert=args.alert)
    except RelayError as error:
        raise ValueError(
            f"--previous {args.previous}: the relay would refuse it ({error.code}): {error.message}"
        ) from None
    except ValueError as error:
        raise ValueError(f"--previous {args.previous}: {error}") from None


def _check(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    from shared.ops.check import check_live, check_settings, failed, render
    from shared.settings import RelaySettings

    findings = check_settings(env)
    if args.live and not failed(findings):
        findings += check_live(RelaySettings.from_env(env))
    out.write(render(findings))
    return 1 if failed(findings) else 0


def _send_test(
    args: argparse.Namespace,
    env: Mapping[str, str],
    out: TextIO,
    *,
    confirm: Callable[[str], str],
    sleep: Callable[[float], None] | None,
) -> int:
    """Page the team once, after a yes (or --yes): a test alert wakes real people."""
    from shared.errors import RelayError
    from shared.ops.send_test import send_test

    settings = _settings_or_exit(env)
    if settings.dry_run:
        why = "RELAY_DRY_RUN is true" if settings.relay_dry_run else "SIGNL4_TEAM_SECRET is not set"
        print(f"error: nothing can be sent: {why}", file=sys.stderr)
        return 1
    if not args.yes:
        when = (
            "left open (--keep)"
            if args.keep
            else (f"resolved after {settings.relay_test_resolve_seconds:g} s")
        )
        answer = confirm(f"Page the SIGNL4 team with a test alert, {when}? [y/N] ")
        if answer.strip().casefold() not in ("y", "yes"):
            out.write("nothing sent\n")
            return 1
    extra = {"sleep": sleep} if sleep is not None else {}
    try:
        result = send_test(
            settings, keep=args.keep, progress=lambda line: out.write(line + "\n"), **extra
        )
    except RelayError as error:  # scrubbed of the secret by the client
        print(f"error: {error.code}: {error.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        out.write("interrupted: the test alert stays open; resolve it in SIGNL4\n")
        return 130
    out.write("test alert kept open\n" if result.resolved is None else "send-test ok\n")
    return 0


def _halo_setup(args: argparse.Namespace, out: TextIO) -> int:
    from shared.ops.halo_setup import SetupError, import_files, relay_base, setup_text

    try:
        base = relay_base(args.url)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out.write(setup_text(base, args.token))
    if args.import_file is not None:
        args.import_file.mkdir(parents=True, exist_ok=True)
        for name, document in import_files(base, args.token).items():
            path = args.import_file / name
            path.write_text(
                json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            out.write(f"wrote {path}\n")
    return 0


def _heartbeat(env: Mapping[str, str], out: TextIO) -> int:
    from shared.entry.timers import beat

    result = beat(env)
    out.write(f"heartbeat: {'sent' if result.sent else 'not sent'} ({result.reason})\n")
    return 0 if result.sent or result.reason == "off" else 1


if __name__ == "__main__":
    sys.exit(main())
