import pytest

# The given/when/then helper asserts on behalf of the tests: let pytest explain its failures.
pytest.register_assert_rewrite("tests.unit.domain.given")
