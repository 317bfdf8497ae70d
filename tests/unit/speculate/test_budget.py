import pytest

from solaris_batch.errors import ConfigError
from solaris_batch.speculate.budget import Budget


def test_budget_parse_and_resolve():
    assert Budget.parse("50000").resolve() == 50000
    assert Budget.parse("2x").resolve(1234) == 2468
    assert Budget.parse("0.5x").resolve(11) == 5
    with pytest.raises(ConfigError):
        Budget.parse("2y")
    with pytest.raises(ConfigError):
        Budget.parse("2x").resolve(0)
