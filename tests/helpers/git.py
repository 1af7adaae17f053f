"""git in a throwaway repository: no user config, a fixed author."""

from __future__ import annotations

import os
import subprocess

ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd, *args: str) -> str:
    """Run `git ARGS` in cwd (raises on failure); its stdout, stripped."""
    return subprocess.run(["git", *args], cwd=cwd, env=dict(os.environ, **ENV), check=True,
                          capture_output=True, text=True).stdout.strip()
