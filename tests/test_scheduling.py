"""How the suite is shared over pytest-xdist workers (tests/conftest.py)."""

from __future__ import annotations


def test_a_file_is_one_unit_of_work_except_the_spread_files(pytestconfig, monkeypatch):
    monkeypatch.setattr(pytestconfig.option, "tx", ["popen", "popen"])  # as the controller has
    scheduler = pytestconfig.hook.pytest_xdist_make_scheduler(config=pytestconfig, log=None)
    scope = scheduler._split_scope
    # one file: one unit, so its module fixtures and servers are built on one worker only
    assert scope("tests/serving/test_batch.py::test_a") == scope(
        "tests/serving/test_batch.py::test_b[x-y]") == "tests/serving/test_batch.py"
    assert scope("tests/test_ddp.py::test_a") != scope("tests/test_cli.py::test_a")
    # notebooks and CLI twins: one unit per test
    assert scope("tests/test_notebooks.py::test_run[emotion-detection]") != scope(
        "tests/test_notebooks.py::test_run[extractive-qa]")
