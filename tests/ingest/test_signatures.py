"""Webhook signatures, computed the way each platform documents them."""

from __future__ import annotations

import base64
import hashlib
import hmac

from services.ingest import signatures

BODY = b'{"object":"page","entry":[{"id":"555","time":1,"changes":[]}]}'


def test_meta_signature_is_hex_hmac_sha256_of_the_raw_body() -> None:
    expected = "sha256=" + hmac.new(b"app-secret", BODY, hashlib.sha256).hexdigest()
    assert signatures.meta_signature(b"app-secret", BODY) == expected


def test_x_signature_and_crc_are_base64_hmac_sha256() -> None:
    digest = hmac.new(b"consumer-secret", b"token123", hashlib.sha256).digest()
    assert (
        signatures.x_crc_response(b"consumer-secret", "token123")
        == "sha256=" + base64.b64encode(digest).decode()
    )


class TestVerify:
    def test_the_accounts_secret_must_match(self) -> None:
        header = signatures.meta_signature(b"s555", BODY)
        accounts = signatures.signing_accounts("facebook", BODY, None)
        assert accounts == {"555"}
        assert signatures.verify(
            platform="facebook", body=BODY, header=header, secrets={"555": b"s555"}, accounts=accounts
        )
        assert not signatures.verify(
            platform="facebook", body=BODY, header=header, secrets={"555": b"other"}, accounts=accounts
        )

    def test_a_changed_body_fails(self) -> None:
        header = signatures.meta_signature(b"s555", BODY)
        assert not signatures.verify(
            platform="facebook", body=BODY + b" ", header=header, secrets={"555": b"s555"}, accounts={"555"}
        )

    def test_missing_header_or_unknown_account_fails(self) -> None:
        header = signatures.meta_signature(b"s555", BODY)
        assert not signatures.verify(
            platform="facebook", body=BODY, header=None, secrets={"555": b"s555"}, accounts={"555"}
        )
        assert not signatures.verify(
            platform="facebook", body=BODY, header=header, secrets={"9": b"s555"}, accounts={"555"}
        )

    def test_the_platform_wide_secret_applies_to_any_account(self) -> None:
        header = signatures.x_signature(b"cs", BODY)
        assert signatures.verify(
            platform="x", body=BODY, header=header, secrets={"*": b"cs"}, accounts={"42"}
        )


def test_the_query_account_does_not_replace_the_accounts_the_body_names() -> None:
    assert signatures.signing_accounts("facebook", BODY, "other-page") == {"555", "other-page"}
    header = signatures.meta_signature(b"s-other", BODY)
    # Signed with another page's secret: the page the body names has no match.
    assert not signatures.verify(
        platform="facebook",
        body=BODY,
        header=header,
        secrets={"other-page": b"s-other", "555": b"s555"},
        accounts=signatures.signing_accounts("facebook", BODY, "other-page"),
    )
