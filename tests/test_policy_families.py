"""The policy-name grammar (alpa_serve/policy_families.py) is the one that the registry, the
figures, the comparison and the grids read."""
from __future__ import annotations

from alpa_serve.policy_families import POLICY_FAMILIES, match_policy, policy_role


def test_names_match_one_family_with_their_parameters():
    assert match_policy("sr-replace-7.5") == (POLICY_FAMILIES[1], ("7.5",))
    assert match_policy("mp-equal-16-1")[1] == ("16", "1")
    assert match_policy("mp-search-sep")[0].key == "mp-search-sep"
    assert match_policy("sr-replace-") is None and match_policy("mp-magic") is None
    assert [policy_role(n) for n in ("sr-greedy", "sr-replace-60", "mp-search",
                                     "mp-search-sep", "mp-equal-8-2", "mp-greedy-4")] == [
        "sr", "clockwork", "beta", "beta", "pipeline", None]


def test_registry_styles_and_comparison_read_the_table():
    from alpa_serve.compare.report import policy_key
    from alpa_serve.placement.registry import get_policy, policy_names
    from alpa_serve.plotting.styles import policy_style

    assert policy_names() == [f.pattern for f in POLICY_FAMILIES]
    assert get_policy("sr-replace-60").interval == 60.0
    assert policy_style("sr-replace-21600").label == "Clockwork++"
    assert policy_style("mp-equal-8-2", "large").label == "Pipeline (8x2)"
    assert policy_key("sr-replace-120") == "sr-replace" and policy_key("mp-search") == "mp-search"
