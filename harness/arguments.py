"""Command-line parsing for the harness's entry points: every mistake is one line and exit status 2."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line (``prog: error: ...; see prog --help``), not usage plus error."""

    def error(self, message: str) -> NoReturn:
        name = self.prog.removeprefix("python -m ")
        print(f"{name}: error: {' '.join(message.split())}; see {self.prog} --help", file=sys.stderr)
        sys.exit(2)


__all__ = ["OneLineParser"]
