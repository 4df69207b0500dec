"""The project's own setup: shared conformance data that CI must run (and a fresh clone
may lack), the packaging metadata, what git ignores."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from paths import REQUIRE_ENV, ROOT, fixtures_required, require_shared


def test_absent_fixtures_skip_on_a_fresh_clone(monkeypatch):
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    assert not fixtures_required()
    with pytest.raises(pytest.skip.Exception):
        require_shared(False, "the data")
    require_shared(True, "the data")  # present: nothing happens


def test_absent_fixtures_fail_where_ci_requires_them(monkeypatch):
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="the data not found"):
        require_shared(False, "the data")
    require_shared(True, "the data")


def test_a_test_needing_absent_data_skips_or_fails_by_the_environment(tmp_path):
    """End to end: a pytest run of a test that needs data that is not there passes
    (skipped) without the variable and fails with it."""
    test = tmp_path / "test_needs_data.py"
    test.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(ROOT / "tests")!r})
            from paths import require_shared

            def test_it():
                require_shared(False, "imaginary data")
            """
        )
    )
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:toondb"]
    args = [*base, "-c", str(tmp_path / "none.ini"), "--rootdir", str(tmp_path), str(test)]
    (tmp_path / "none.ini").write_text("[pytest]\n")

    def run(value: str | None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != REQUIRE_ENV}
        if value is not None:
            env[REQUIRE_ENV] = value
        return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)

    fresh = run(None)
    assert fresh.returncode == 0 and "1 skipped" in fresh.stdout, fresh.stdout
    ci = run("1")
    assert ci.returncode == 1 and "1 failed" in ci.stdout, ci.stdout


def test_ci_requires_the_shared_fixtures():
    assert f"export {REQUIRE_ENV}=1" in (ROOT / ".ci" / "run").read_text()


def test_license_is_an_spdx_string():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    requires = project["build-system"]["requires"]
    # SPDX license expressions need setuptools 77 or later
    assert "setuptools>=77" in requires


def test_the_readme_virtualenv_is_ignored():
    """The README's .venv is ignored whether it is a directory or a link to one (a
    link once slipped into a commit past a directory-only '.venv/' pattern)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in (".venv", ".venv/bin/python"):
        proc = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False
        )
        assert proc.returncode == 0, f"{path} is not ignored by .gitignore"
