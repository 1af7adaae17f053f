"""`swaplab` console script: one module per subcommand, each with HELP, add_arguments(p)
and run(args).

  swaplab devices [--profiles-dir DIR] [--no-local-device] [--adb-server HOST:PORT]
                  [--usbmux SOCK|HOST:PORT]
  swaplab profiles check [DIR]
  swaplab report RUN [--compare OTHER] [--screenshot [PNG]]
                                    re-render index.html, benchmarks.json, trace.json of a
                                    run; with --compare, compare RUN against OTHER first
  swaplab compare BASELINE CANDIDATE
                                    verdict lines; exit 1 on a regression / failed target
  swaplab lab [pytest args]         run the suites (same as `pytest suites`)
  swaplab virtual-device start --profile NAME [--port P] [--abi ABI] [--fault SPEC ...]
                                    run SwapLab's virtual Android device until Ctrl-C
  swaplab virtual-device start --profile iphone15pro --usbmux SOCK
                                    a virtual iPhone behind a usbmuxd socket instead
"""

from __future__ import annotations

import argparse
import sys

import pytest

from harness import REPO_ROOT
from harness.cli import compare, devices, profiles, report
from harness.virtual_device import launch

#: subcommands with their own options, in --help order
COMMANDS = {"devices": devices, "profiles": profiles, "report": report, "compare": compare}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swaplab", description="SwapLab device lab")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=module.HELP))
    # these two hand every argument on: to pytest, to the virtual device's own parser
    sub.add_parser("lab", help="run the suites; extra args go to pytest", add_help=False)
    sub.add_parser("virtual-device", add_help=False,
                   help="a virtual Android device speaking the adb protocol "
                        "(swaplab virtual-device start --help)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "lab":
        return int(pytest.main([str(REPO_ROOT / "suites"), *rest]))
    if args.command == "virtual-device":
        return int(launch.main(rest) or 0)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return COMMANDS[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
