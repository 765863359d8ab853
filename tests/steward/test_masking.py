"""Masking decision inputs by JSON pointer (RFC 6901) before they are logged."""

from __future__ import annotations

from steward.governance.masking import mask

INPUT = {
    "action": {"type": "steward.retrain.requested",
               "data": {"owner": "ana@example.com", "sites": ["lyon", "berlin"],
                        "a/b": 1, "m~n": 2}},
    "token": "stw_secret",
}


def test_named_values_become_stars_and_the_original_is_untouched():
    masked, applied = mask(INPUT, ["/token", "/action/data/owner", "/action/data/sites/1"])
    assert masked == {
        "action": {"type": "steward.retrain.requested",
                   "data": {"owner": "***", "sites": ["lyon", "***"], "a/b": 1, "m~n": 2}},
        "token": "***",
    }
    assert applied == ["/token", "/action/data/owner", "/action/data/sites/1"]
    assert INPUT["token"] == "stw_secret" and INPUT["action"]["data"]["sites"][1] == "berlin"


def test_escaped_tokens_name_keys_with_slash_and_tilde():
    masked, applied = mask(INPUT, ["/action/data/a~1b", "/action/data/m~0n"])
    assert masked["action"]["data"]["a/b"] == "***" and masked["action"]["data"]["m~n"] == "***"
    assert applied == ["/action/data/a~1b", "/action/data/m~0n"]


def test_pointers_that_name_nothing_are_ignored():
    pointers = ["/missing", "/action/data/sites/2", "/action/data/sites/-",
                "/action/data/sites/01", "/token/deeper", "", "no-slash", "/token", "/token"]
    masked, applied = mask(INPUT, pointers)
    assert applied == ["/token"]
    assert masked == {**INPUT, "token": "***"}


def test_a_masked_object_hides_everything_below_it():
    masked, applied = mask(INPUT, ["/action/data", "/action/data/owner"])
    assert masked["action"] == {"type": "steward.retrain.requested", "data": "***"}
    assert applied == ["/action/data"]
