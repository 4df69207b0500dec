"""The checks conftest.py runs after every test do fail a test that breaks them."""

from __future__ import annotations

import shutil

from paths import ROOT

pytest_plugins = ["pytester"]


def _project(pytester):
    shutil.copy(ROOT / "tests" / "conftest.py", pytester.path / "conftest.py")
    shutil.copy(ROOT / "tests" / "paths.py", pytester.path / "paths.py")
    shutil.copy(ROOT / "tests" / "s3_harness.py", pytester.path / "s3_harness.py")


def test_a_test_that_leaves_a_damaged_database_fails(pytester):
    _project(pytester)
    pytester.makepyfile(
        test_damage="""
        from toondb import Database

        def test_damage(tmp_path):
            with Database.open(tmp_path / "db") as db:
                for i in range(2000):
                    db.put(b"k%05d" % i, b"v" * 50)
            data = tmp_path / "db" / "toondb.data"
            raw = bytearray(data.read_bytes())
            raw[5 * 4096 + 100] ^= 0xFF  # a flipped byte in a data page
            data.write_bytes(bytes(raw))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*integrity check after the test*damaged*"])


def test_the_marker_exempts_a_test_that_damages_on_purpose(pytester):
    _project(pytester)
    pytester.makepyfile(
        test_damage="""
        import pytest
        from toondb import Database

        @pytest.mark.damages_files
        def test_damage(tmp_path):
            with Database.open(tmp_path / "db") as db:
                for i in range(2000):
                    db.put(b"k%05d" % i, b"v" * 50)
            data = tmp_path / "db" / "toondb.data"
            raw = bytearray(data.read_bytes())
            raw[5 * 4096 + 100] ^= 0xFF
            data.write_bytes(bytes(raw))
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_test_that_changes_the_working_directory_fails(pytester):
    _project(pytester)
    pytester.makepyfile(
        test_cwd="""
        import os

        def test_cwd(tmp_path):
            os.chdir(tmp_path)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*changed the working directory*"])
