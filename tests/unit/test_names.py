import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops.errors import InvalidNameError
from llmops.names import check_name, is_valid_name


@given(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True))
def test_names_matching_the_rule_are_accepted(name: str) -> None:
    assert check_name(name, "prompt") == name


@pytest.mark.parametrize("name", ["", "Support", "-x", ".x", "a b", "a/b", "a" * 65, "ünicode", "x\n", "../etc", "a@b"])
def test_names_outside_the_rule_are_refused_with_the_kind(name: str) -> None:
    assert not is_valid_name(name)
    with pytest.raises(InvalidNameError, match="invalid route name"):
        check_name(name, "route")
