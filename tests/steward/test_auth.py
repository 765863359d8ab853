"""Tokens: hashed at rest, scoped, optionally bound to a site."""

from __future__ import annotations

import pytest

from steward.auth import Authenticator, check_sites, digest, new_token
from steward.errors import Forbidden, Unauthorized


def test_tokens_are_kept_as_digests_and_checked_by_scope():
    token, spec = new_token("berlin-n1", ["ingest"], "berlin")
    assert token.startswith("stw_") and spec.sha256 == digest(token) and token not in repr(spec)
    auth = Authenticator([spec])
    who = auth.authenticate(f"Bearer {token}", "ingest")
    assert (who.name, who.site) == ("berlin-n1", "berlin")
    with pytest.raises(Forbidden, match="lacks the 'admin' scope"):
        auth.authenticate(f"Bearer {token}", "admin")


@pytest.mark.parametrize(("header", "reason"), [
    (None, "missing Authorization"), ("Basic abc", "Bearer <token>"), ("Bearer ", "Bearer "),
    ("Bearer stw_not-issued", "unknown or revoked"),
])
def test_bad_credentials_are_401_with_a_reason(header, reason):
    auth = Authenticator([new_token("n", ["ingest"], None)[1]])
    with pytest.raises(Unauthorized, match=reason):
        auth.authenticate(header, "ingest")


def test_site_binding():
    token, spec = new_token("n", ["ingest"], "berlin")
    who = Authenticator([spec]).authenticate(f"bearer {token}", "ingest")
    check_sites(who, ["berlin"])
    with pytest.raises(Forbidden, match=r"bound to site 'berlin'.*lyon"):
        check_sites(who, ["berlin", "lyon"])


def test_no_tokens_means_auth_off():
    assert Authenticator([]).authenticate(None, "admin").name == "anonymous"
