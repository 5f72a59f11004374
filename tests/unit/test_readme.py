"""The README's commands and example are the project's contract with newcomers: keep them true."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_readme_has_exactly_two_setup_commands() -> None:
    commands = _code_blocks("sh")
    assert len(commands) == 2
    assert "kimflow serve --demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = _code_blocks("sh")[1].strip()
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci_script.splitlines()


def test_python_example_runs_as_written(tmp_path: Path) -> None:
    """The API example runs in a fresh directory holding the shipped processes."""
    example = _code_blocks("python")[0]
    shutil.copytree(ROOT / "processes", tmp_path / "processes")
    script = tmp_path / "example.py"
    script.write_text(example, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "opened" in result.stdout
