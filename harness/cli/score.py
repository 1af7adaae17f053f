"""`swaplab score --source S --target T --output O [--json] [--faces all|largest|best]
[--enhanced auto|on|off] [--mode small|tiny|base]`: every quality score of one swapped
frame (the logic: harness.quality.score_output; docs/quality.md "Face scores").

Exit 0 when every gating score passes, 1 when one fails, 2 when an input cannot be read
or scored (the message names the file)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.quality.faces import POLICIES
from harness.quality.golden import load_rgb
from harness.quality.score_output import ENHANCED_CHOICES, ScoreInputError, score_output

HELP = "score one swapped frame: every quality score, exit 1 on a failure"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", type=Path, required=True, help="the source face image")
    p.add_argument("--target", type=Path, required=True, help="the target frame")
    p.add_argument("--output", type=Path, required=True, help="the swapped frame")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("--mode", default="small", choices=["tiny", "small", "base"],
                   help="reference pipeline mode for landmarks (default small)")
    p.add_argument("--faces", default="all", choices=POLICIES,
                   help="which target faces had to be swapped (default all)")
    p.add_argument("--enhanced", default="auto", choices=ENHANCED_CHOICES,
                   help="compare with the Retinex-enhanced target (auto: when the output's "
                        "background matches it better)")


def _safe(path: Path) -> str:
    return "".join(c if c.isprintable() else "?" for c in str(path))


def run(args: argparse.Namespace) -> int:
    images = {}
    for role in ("source", "target", "output"):
        path = getattr(args, role)
        try:
            images[role] = load_rgb(path)
        except Exception as e:  # noqa: BLE001 - any unreadable file is reported by name
            print(f"swaplab score: error: --{role} {_safe(path)}: cannot read an image: {e}",
                  file=sys.stderr)
            return 2
    try:
        result = score_output(images["source"], images["target"], images["output"],
                              mode=args.mode, faces=args.faces, enhanced=args.enhanced)
    except ScoreInputError as e:
        role = str(e).split(" ", 1)[0].rstrip(":")
        path = getattr(args, role, None) if role in images else args.output
        print(f"swaplab score: error: {_safe(path)}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_dict(), indent=2, default=float) if args.json else result.text())
    return 0 if result.passed else 1
