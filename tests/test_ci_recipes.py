"""The farm-host CI recipes (docs/ci/github-actions.yml, docs/ci/gitlab-ci.yml) run what
exists: every command is a script of this repository or adb, `./run lab`'s arguments parse
with pytest's own parser and SwapLab's plugin (options, the profile marker), the STF token
comes from the CI's secrets and nowhere else, and the artifacts are the run folder and the
JUnit file the command writes."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys

import pytest
import yaml
from helpers.paths import REPO

from harness.profiles import load_profiles

GITHUB = REPO / "docs" / "ci" / "github-actions.yml"
GITLAB = REPO / "docs" / "ci" / "gitlab-ci.yml"


def github_job() -> tuple[list[str], dict[str, str], list[str]]:
    """(commands, environment, artifact paths) of the recipe's one job."""
    doc = yaml.safe_load(GITHUB.read_text())
    (job,) = doc["jobs"].values()
    env = dict(job.get("env") or {})
    commands, artifacts = [], []
    for step in job["steps"]:
        env.update(step.get("env") or {})
        if "run" in step:
            commands.append(step["run"])
        if str(step.get("uses", "")).startswith("actions/upload-artifact"):
            assert step.get("if") == "always()", "the run folder matters most when tests fail"
            artifacts += [p.strip() for p in step["with"]["path"].splitlines() if p.strip()]
    return commands, env, artifacts


def gitlab_job() -> tuple[list[str], dict[str, str], list[str], dict]:
    doc = yaml.safe_load(GITLAB.read_text())
    (job,) = (v for k, v in doc.items() if isinstance(v, dict) and "script" in v)
    art = job["artifacts"]
    assert art["when"] == "always", "the run folder matters most when tests fail"
    return list(job["script"]), dict(job.get("variables") or {}), art["paths"], art


def expand(text: str, env: dict[str, str]) -> str:
    """$VAR / ${VAR} from the job's environment (placeholder <VAR> for what the CI sets),
    and GitHub's ${{ env.X }}, ${{ vars.X }} / ${{ secrets.X }} (-> <X>) and
    ${{ runner.temp }} (the runner exports it as RUNNER_TEMP)."""
    for _ in range(4):
        text = re.sub(r"\$\{\{\s*env\.(\w+)\s*\}\}", lambda m: env.get(m.group(1), m.group(0)),
                      text)
        text = re.sub(r"\$\{\{\s*runner\.temp\s*\}\}", "$RUNNER_TEMP", text)
        text = re.sub(r"\$\{\{\s*(?:vars|secrets)\.(\w+)\s*\}\}", r"<\1>", text)
        text = re.sub(r"\$\{?(\w+)\}?(?!\w)",
                      lambda m: env.get(m.group(1), f"<{m.group(1)}>"), text)
    return text


def lab_command(commands: list[str]) -> list[str]:
    (cmd,) = [c for c in commands if c.strip().startswith("./run lab")]
    return shlex.split(cmd)


def parse_with_pytest(args: list[str], tmp_path) -> dict:
    """The args parsed by pytest's own command-line parser with the installed plugins
    (SwapLab's entry point included), without running anything."""
    code = ("import json, sys\n"
            "from _pytest.config import _prepareconfig\n"
            "c = _prepareconfig(sys.argv[1:])\n"
            "o = c.option\n"
            "print(json.dumps({'stf': o.stf, 'markexpr': o.markexpr, 'lab_out': o.lab_out,"
            " 'xmlpath': o.xmlpath, 'numprocesses': getattr(o, 'numprocesses', None)}))\n")
    r = subprocess.run([sys.executable, "-c", code, "-p", "no:cacheprovider", *args],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, f"pytest cannot parse {args}: {r.stderr[-3000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def without_xdist(args: list[str]) -> list[str]:
    """`-n N` dropped where pytest-xdist is not installed (test_recipes_run_on_xdist)."""
    if importlib.util.find_spec("xdist") is not None:
        return args
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "-n":
            skip = True
        elif not a.startswith("-n"):
            out.append(a)
    return out


RECIPES = {"github": github_job, "gitlab": lambda: gitlab_job()[:3]}


@pytest.mark.parametrize("ci", sorted(RECIPES))
def test_recipe_commands_exist_and_parse(ci, tmp_path):
    commands, env, artifacts = RECIPES[ci]()
    for c in commands:
        argv = shlex.split(c)
        if argv[0] == "bash":
            assert (REPO / argv[1]).is_file(), argv
        elif argv[0] == "adb":
            # Debian's adb comes with scripts/bootstrap
            assert re.search(r"apt_packages=\([^)]*\badb\b", (REPO / "scripts" / "bootstrap")
                             .read_text()), "scripts/bootstrap must install adb"
        else:
            assert argv[:2] == ["./run", "lab"], f"unknown command in the {ci} recipe: {c}"
    run_script = (REPO / "run").read_text()
    assert re.search(r"^\s*lab\)", run_script, re.MULTILINE), "./run has no `lab` command"

    args = [expand(a, env) for a in lab_command(commands)[2:]]
    assert "-n" in args and args[args.index("-n") + 1] == "auto"
    opts = parse_with_pytest(without_xdist(args), tmp_path)
    assert opts["stf"] == "<STF_URL>"  # from the CI's settings, not written in the recipe
    marker = opts["markexpr"]
    assert marker in {p.marker for p in load_profiles(REPO / "device_profiles").values()
                      if p.platform == "android"}, marker
    assert opts["xmlpath"] == f"{opts['lab_out']}/junit.xml"
    # the artifacts are this command's run folders and JUnit file
    prefix = "$CI_PROJECT_DIR/" if ci == "gitlab" else ""
    paths = {expand(prefix + p, env).rstrip("/") for p in artifacts}
    assert paths == {f"{opts['lab_out']}/runs", opts["xmlpath"]}, paths


def test_token_comes_from_ci_secrets_only():
    commands, env, _ = github_job()
    assert env["SWAPLAB_STF_TOKEN"] == "${{ secrets.STF_TOKEN }}"
    gl_commands, gl_vars, _, art = gitlab_job()
    assert gl_vars["SWAPLAB_STF_TOKEN"] == "$STF_TOKEN"  # a masked CI/CD variable
    assert art["reports"]["junit"] in art["paths"]
    for c in commands + gl_commands:
        assert "TOKEN" not in c and "secrets." not in c, c
    for f in (GITHUB, GITLAB):
        code = [line for line in f.read_text().splitlines() if not line.lstrip().startswith("#")]
        uses = [line.strip() for line in code if "STF_TOKEN" in line]
        assert len(uses) == 1 and uses[0].startswith("SWAPLAB_STF_TOKEN:"), (f, uses)


def test_recipes_run_on_xdist(tmp_path):
    """`-n auto` is pytest-xdist's option (issue 16 part 1 adds xdist to the lab)."""
    if importlib.util.find_spec("xdist") is None:
        pytest.skip("pytest-xdist is not installed in this checkout (issue 16 part 1)")
    for job in (github_job, lambda: gitlab_job()[:3]):
        commands, env, _ = job()
        opts = parse_with_pytest([expand(a, env) for a in lab_command(commands)[2:]],
                                 tmp_path)
        assert opts["numprocesses"] not in (None, 0), opts
