"""probekit.replication: the verdict on a confirmatory document against the first."""
from probekit.replication import claimed_tests, compare, is_same_draw


def _test(tid, estimate, p_value, p_holm=None, kind="preference", variant=None):
    return {"id": tid, "kind": kind, "variant": variant, "estimate": estimate, "ci": [estimate - 0.1, estimate + 0.1],
            "p_value": p_value, "p_holm": p_value if p_holm is None else p_holm}


def _doc(tests, images, primary=None):
    return {"tests": tests, "primary": primary, "hashes": {"images": {f"i{k}": h for k, h in enumerate(images)}}}


FIRST = _doc([_test("a", 0.7, 0.001), _test("b", 0.52, 0.4), _test("c", 0.3, 0.01),
              _test("a@v", 0.7, 0.001, variant="v")], ["h1", "h2", "h3", "h4"])


def test_the_claims_are_the_holm_significant_base_tests_or_the_primary():
    assert [t["id"] for t in claimed_tests(FIRST)] == ["a", "c"]
    assert [t["id"] for t in claimed_tests(dict(FIRST, primary="c"))] == ["c"]
    assert claimed_tests(dict(FIRST, primary="b")) == []


def test_replicated_needs_every_claim_again_in_the_same_direction_holm_over_the_claims():
    second = _doc([_test("a", 0.66, 0.01), _test("c", 0.35, 0.02), _test("b", 0.9, 0.0001)], ["n1", "n2", "n3"])
    status, rows = compare(FIRST, second)
    assert status == "replicated"
    assert [(r["id"], r["p_holm"], r["same_direction"]) for r in rows] == [("a", 0.02, True), ("c", 0.02, True)]
    assert set(rows[0]) == {"id", "estimate", "ci", "p_value", "p_holm", "same_direction"}
    flipped = _doc([_test("a", 0.66, 0.01), _test("c", 0.65, 0.001)], ["n1"])
    assert compare(FIRST, flipped)[0] == "not_replicated"
    weak = _doc([_test("a", 0.66, 0.04), _test("c", 0.45, 0.04)], ["n1"])  # each 0.04 alone, 0.08 after Holm
    assert compare(FIRST, weak)[0] == "not_replicated"
    missing = _doc([_test("a", 0.66, 0.001)], ["n1"])
    status, rows = compare(FIRST, missing)
    assert status == "not_replicated" and rows[1]["p_value"] is None and rows[1]["same_direction"] is False


def test_same_draw_and_not_applicable():
    assert compare(FIRST, _doc([_test("a", 0.7, 0.001), _test("c", 0.3, 0.01)], ["h1", "h2", "x"]))[0] == "same_draw"
    assert compare(_doc([_test("a", 0.55, 0.3)], ["h1"]), FIRST) == ("not_applicable", [])
    assert is_same_draw(["a", "b"], ["a", "c"]) and not is_same_draw(["a", "b"], ["a", "c", "d"])
    assert not is_same_draw(["a"], [])
