"""The Dockerfile, read as instructions (no hadolint here, no Docker engine to build with).

Checked: two stages, the wheels built in the first and only installed in the
second, a slim runtime run by a user other than root, a health check on
``/livez`` that really answers (it is run against a live server), the ports
exposed, ``ACD_*`` variables that are real settings, and COPY sources that
exist and that .dockerignore does not leave out of the build context.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import shlex
import sys
from pathlib import Path

from server.harness import free_port, running

from api.settings import Settings
from deployment.layout import DOCKERFILE, DOCKERIGNORE, ROOT, compose

Instruction = tuple[str, str]  # (keyword, arguments)


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        out.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation"
    return out


def stages() -> list[list[Instruction]]:
    """The instructions of each stage, each list starting with its FROM."""
    out: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(instruction)
    return out


def arguments() -> dict[str, str]:
    """Defaults of the ARGs before the first FROM."""
    out = {}
    for keyword, args in instructions():
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            out[name] = value
    return out


def environment(stage: list[Instruction]) -> dict[str, str]:
    out = {}
    for keyword, args in stage:
        if keyword == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                out[name] = value
    return out


def healthcheck_command() -> str:
    (args,) = [a for k, a in stages()[-1] if k == "HEALTHCHECK"]
    _, _, command = args.partition(" CMD ")
    assert command, "HEALTHCHECK ... CMD command"
    return command


def test_wheels_are_built_in_one_stage_and_installed_in_a_slim_second() -> None:
    builder, runtime = stages()
    builder_from = builder[0][1].split()
    assert builder_from[-2:] == ["AS", "builder"]
    assert any(k == "RUN" and "pip wheel" in a for k, a in builder)
    runtime_image = runtime[0][1].split()[0]
    image = arguments().get(runtime_image.strip("${}"), runtime_image)
    assert image.startswith("python:3.11") and image.endswith("-slim"), image
    assert ("COPY", "--from=builder /wheels /tmp/wheels") in runtime
    installs = [a for k, a in runtime if k == "RUN" and "pip install" in a]
    assert installs and all("--no-index" in a for a in installs), "only the builder's wheels"
    assert not any("build-essential" in a for k, a in runtime), "no compiler in the runtime"


def test_the_server_runs_as_a_user_without_privileges() -> None:
    runtime = stages()[-1]
    users = [a for k, a in runtime if k == "USER"]
    assert users, "no USER: the server would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    after_user = runtime[[k for k, _ in runtime].index("USER") :]
    assert not any(k == "RUN" for k, _ in after_user[1:]), "nothing runs as root after USER"


def test_the_ports_and_the_entry_point() -> None:
    runtime = stages()[-1]
    exposed = {p for k, a in runtime if k == "EXPOSE" for p in a.split()}
    env = environment(runtime)
    assert f"{env['ACD_PORT']}/tcp" in exposed
    assert {"5060/udp", "5060/tcp"} <= exposed  # SIP, with ACD_SIP_PORT=5060
    assert env["ACD_HOST"] == "0.0.0.0"
    assert ("ENTRYPOINT", '["acd"]') in runtime
    assert ("CMD", '["serve"]') in runtime


def test_every_acd_variable_is_a_setting() -> None:
    settings = {f"ACD_{name.upper()}" for name in Settings.model_fields}
    given = {n for n in environment(stages()[-1]) if n.startswith("ACD_")}
    assert given and given <= settings, given - settings


def test_what_is_copied_exists_and_is_in_the_build_context() -> None:
    ignored = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for keyword, args in stages()[0]:
        if keyword != "COPY" or args.startswith("--from"):
            continue
        *sources, _ = args.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            hit = [p for p in ignored if fnmatch.fnmatch(source, p.removeprefix("**/"))]
            assert not hit, f"COPY {source}, but .dockerignore leaves it out ({hit})"
    for needed in ("pyproject.toml", "README.md"):  # pyproject.toml names README.md
        assert any(needed in a.split() for k, a in stages()[0] if k == "COPY")


async def run(command: list[str], env: dict[str, str]) -> int:
    process = await asyncio.create_subprocess_exec(
        *command, env={**os.environ, **env}, stdout=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(process.wait(), 30)


async def test_the_health_checks_pass_against_a_live_server_and_fail_without_one(
    tmp_path: Path,
) -> None:
    """The Dockerfile's and compose.yaml's commands, run here with this Python."""
    image_check = healthcheck_command()
    assert "/livez" in image_check
    compose_check = compose()["services"]["acd"]["healthcheck"]["test"]
    assert compose_check[:2] == ["CMD", "python"]
    compose_code = compose_check[-1]
    url = f"sqlite+aiosqlite:///{tmp_path / 'acd.db'}"
    async with running(url, tmp_path, {}) as centre:
        port = str(centre.settings.port)
        shell = ["sh", "-c", image_check.replace("python ", f"{sys.executable} ", 1)]
        assert await run(shell, {"ACD_PORT": port}) == 0
        # compose.yaml names the port the server listens on in the container (8080)
        code = compose_code.replace(":8080/", f":{port}/")
        assert await run([sys.executable, "-c", code], {}) == 0
    closed = str(free_port())
    assert await run(shell, {"ACD_PORT": closed}) != 0
    assert await run([sys.executable, "-c", compose_code.replace(":8080/", f":{closed}/")], {}) != 0
