import pytest


@pytest.fixture(scope="session")
def catalogue():
    """Built once per worker, as under pytest-xdist."""
    return {"apple": 3, "pear": 5}
