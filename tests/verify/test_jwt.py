"""``scheme: jwt`` on its own: algorithms and key families, inline keys (PEM, JWK, JWK set),
claims (issuer, audience, iat/exp/nbf within the tolerance, required ones, the body hash in
hex or base64url), what lint says about bad declarations, and `sign` (simulate) agreeing with
the verifier. Tokens are made with PyJWT, independently of the verifier's reading."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.config.examples import OutgoingRequest
from gateway.config.lint import lint
from gateway.config.signing import sign
from gateway.outbound.verification_keys import VerificationKeys
from gateway.verify import VerificationFailed, VerifyConfigError, WebhookRequest, build_verifier
from gateway.verify.verifier import fetches_keys

NOW = 1_750_000_000
BODY = b'{"event":"deploy","id":"d_1"}'
SECRET = "a-shared-secret-long-enough-for-hs256"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid}


def hs(**extra: Any) -> dict[str, Any]:
    return {
        "scheme": "jwt",
        "header": "X-Token",
        "algorithms": ["HS256"],
        "secret": SECRET,
        **extra,
    }


def public(key_text: str, algorithms: list[str], **extra: Any) -> dict[str, Any]:
    return {"scheme": "jwt", "header": "X-Token", "algorithms": algorithms,
            "public_key": key_text, **extra}  # fmt: skip


def req(token: str | None, body: bytes = BODY, header: str = "x-token") -> WebhookRequest:
    headers = {header: token} if token is not None else {}
    return WebhookRequest("POST", "", headers, (), body)


def lookup(value: Any) -> list[str]:
    """What the tenant's secret lookup answers: a list (rotation) flattened."""
    return list(value) if isinstance(value, list) else [value] if value else []


def verdict(spec: dict[str, Any], token: str, body: bytes = BODY, now: float = NOW) -> str:
    try:
        build_verifier(spec).verify(req(token, body), lookup, now)
    except VerificationFailed as failed:
        return failed.reason
    return "ok"


def token(key: Any, alg: str = "HS256", kid: str | None = None, **claims: Any) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode({"iat": NOW, **claims}, key, algorithm=alg, headers=headers)


def hex_sha256(body: bytes = BODY) -> str:
    return hashlib.sha256(body).hexdigest()


# ---- declarations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        (hs(algorithms=["none"]), "'none' is not one of"),
        (hs(algorithms=[]), "missing required key 'algorithms'"),
        (hs(algorithms=["HS256", "ES256"]), "mixes HS*"),
        (public(pem(EC_KEY), ["HS256"]), "HS* algorithms are checked with 'secret'"),
        (hs(algorithms=["ES256"]), "checked with 'public_key' or 'keys'"),
        (hs(public_key=pem(EC_KEY)), "exactly one of"),
        (hs(body_hash={"claim": "sha256", "encoding": "base32"}), "'base32' is not one of"),
        (hs(keys={"endpoint": "x"}), "exactly one of"),
        (hs(leeway="5m"), "unknown key 'leeway'"),
    ],
)
def test_declarations_the_engine_cannot_run_are_refused(
    spec: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(VerifyConfigError, match=complaint.replace("*", r"\*")):
        build_verifier(spec)


def _lint(tmp_path: Path, verify: str, endpoints: str = "") -> list[str]:
    (tmp_path / "acme.yaml").write_text(
        "kind: integration\nname: acme\napi:\n  base_url: https://api.acme.test\n"
        f"  endpoints:\n    get_key: {{method: POST, path: /keys}}\n{endpoints}"
        "webhook:\n  verify:\n" + "".join(f"    {line}\n" for line in verify.splitlines())
    )
    return [d.text() for d in lint([str(tmp_path)]).diagnostics]


def test_lint_reports_a_bad_jwt_declaration_with_its_line(tmp_path: Path) -> None:
    found = _lint(tmp_path, "scheme: jwt\nheader: X-Token\nalgorithms: [none]\nsecret: s")
    assert found and all("acme.yaml:" in text for text in found)
    assert any("algorithms" in text for text in found), found
    found = _lint(tmp_path, "scheme: jwt\nheader: X-Token\nalgorithms: [HS256, RS256]\nsecret: s")
    assert any("mixes HS*" in text and "[verify-config]" in text for text in found), found
    found = _lint(
        tmp_path, "scheme: jwt\nheader: X-Token\nalgorithms: [ES256]\nkeys: {endpoint: get_kee}"
    )
    assert any("'get_kee' is not declared" in t and "get_key" in t for t in found), found
    clean = "scheme: jwt\nheader: X-Token\nalgorithms: [ES256]\nkeys: {endpoint: get_key}"
    assert _lint(tmp_path, clean) == []


# ---- algorithms and keys --------------------------------------------------------------------


def test_hs256_with_the_secret_is_accepted_and_another_secret_is_not() -> None:
    assert verdict(hs(), token(SECRET)) == "ok"
    assert verdict(hs(), token(SECRET + "x")) == "signature mismatch"
    assert verdict(hs(secret=["old-secret-of-enough-length-0123", SECRET]), token(SECRET)) == "ok"


def test_the_prefix_is_read_case_insensitively_and_required() -> None:
    spec = hs(header="Authorization", prefix="Bearer ")
    verifier = build_verifier(spec)
    verifier.verify(req("bearer " + token(SECRET), header="authorization"), lookup, NOW)
    with pytest.raises(VerificationFailed, match="lacks its prefix"):
        verifier.verify(req(token(SECRET), header="authorization"), lookup, NOW)


@pytest.mark.parametrize(
    ("key", "alg", "text"),
    [
        (EC_KEY, "ES256", pem(EC_KEY)),
        (EC_KEY, "ES256", json.dumps(ec_jwk(EC_KEY, "k1"))),
        (RSA_KEY, "RS256", pem(RSA_KEY)),
        (RSA_KEY, "PS256", json.dumps(RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True))),
    ],
    ids=["es256-pem", "es256-jwk", "rs256-pem", "ps256-jwk"],
)
def test_public_keys_verify_in_pem_and_jwk(key: Any, alg: str, text: str) -> None:
    spec = public(text, ["ES256", "RS256", "PS256"])
    assert verdict(spec, token(key, alg)) == "ok"
    other = (
        ec.generate_private_key(ec.SECP256R1())
        if alg == "ES256"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    assert verdict(spec, token(other, alg)) == "signature mismatch"


def test_a_jwk_set_picks_the_key_by_kid() -> None:
    second = ec.generate_private_key(ec.SECP256R1())
    keys = json.dumps({"keys": [ec_jwk(EC_KEY, "one"), ec_jwk(second, "two")]})
    spec = public(keys, ["ES256"])
    assert verdict(spec, token(second, "ES256", kid="two")) == "ok"
    assert verdict(spec, token(EC_KEY, "ES256", kid="one")) == "ok"


def test_no_alg_confusion_between_families_and_curves() -> None:
    # the public key's PEM used as an HMAC secret: HS256 is not listed for a public key
    forged = _hmac_token({"iat": NOW}, pem(EC_KEY).encode(), "HS256")
    assert "not allowed" in verdict(public(pem(EC_KEY), ["ES256"]), forged)
    # an RSA key configured, an ES256 token: no key of its kind
    assert verdict(public(pem(RSA_KEY), ["RS256", "ES256"]), token(EC_KEY, "ES256")) == (
        "signature mismatch"
    )
    # a P-384 key is not a P-256 one, whatever the token says
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert verdict(public(pem(p384), ["ES256", "ES384"]), token(p384, "ES384")) == "ok"
    assert verdict(
        public(pem(p384), ["ES256", "ES384"]), _relabel(token(p384, "ES384"), "ES256")
    ) in ("signature mismatch",)
    # alg none, even listed nowhere
    unsigned = _b64({"alg": "none"}) + "." + _b64({"iat": NOW}) + "."
    assert "not allowed" in verdict(hs(), unsigned)


def test_a_private_jwk_is_not_taken_for_a_public_key() -> None:
    private = ECAlgorithm.to_jwk(EC_KEY, as_dict=True)
    assert verdict(public(json.dumps(private), ["ES256"]), token(EC_KEY, "ES256")) == (
        "configured public key is not valid"
    )


def test_garbage_tokens_fail_verification_and_nothing_else() -> None:
    for garbage in ("", "x", "a.b.c", "e30.e30.", "....", "Bearer", "é.é.é", "x" * 20_000):
        assert verdict(hs(), garbage) != "ok"
    assert verdict(hs(), token(SECRET)[:-3]) != "ok"


# ---- claims ---------------------------------------------------------------------------------


def test_issuer_and_audience_are_checked_when_declared() -> None:
    spec = hs(issuer="netlify", audience="gateway")
    assert verdict(spec, token(SECRET, iss="netlify", aud="gateway")) == "ok"
    assert verdict(spec, token(SECRET, iss="netlify", aud=["other", "gateway"])) == "ok"
    assert verdict(spec, token(SECRET, iss="attacker", aud="gateway")) == "token issuer mismatch"
    assert verdict(spec, token(SECRET, iss="netlify")) == "token audience mismatch"


def test_iat_exp_and_nbf_hold_within_the_tolerance() -> None:
    spec = hs(tolerance="5m")
    assert verdict(spec, token(SECRET, iat=NOW - 299)) == "ok"
    assert verdict(spec, token(SECRET, iat=NOW - 301)) == "token iat outside tolerance"
    assert verdict(spec, token(SECRET, iat=NOW + 301)) == "token iat outside tolerance"
    assert verdict(spec, token(SECRET, exp=NOW - 200)) == "ok"  # within the leeway
    assert verdict(spec, token(SECRET, exp=NOW - 301)) == "token expired"
    assert verdict(spec, token(SECRET, nbf=NOW + 301)) == "token not valid yet"
    assert verdict(spec, token(SECRET, iat="yesterday")) == "token claim iat is not a number"


def test_required_claims_must_be_present() -> None:
    spec = hs(required_claims=["iat", "jti"])
    assert verdict(spec, token(SECRET, jti="j1")) == "ok"
    assert verdict(spec, token(SECRET)) == "token lacks claim jti"
    no_iat = jwt.encode({"jti": "j1"}, SECRET, algorithm="HS256")
    assert verdict(spec, no_iat) == "token lacks claim iat"


@pytest.mark.parametrize(
    ("algorithm", "encoding", "value"),
    [
        ("sha256", "hex", hashlib.sha256(BODY).hexdigest()),
        ("sha256", "hex", hashlib.sha256(BODY).hexdigest().upper()),
        ("sha512", "base64url", base64.urlsafe_b64encode(hashlib.sha512(BODY).digest()).decode()),
        ("sha256", "base64url", base64.urlsafe_b64encode(hashlib.sha256(BODY).digest()).decode().rstrip("=")),
    ],
)  # fmt: skip
def test_the_body_hash_claim_matches_the_raw_body(
    algorithm: str, encoding: str, value: str
) -> None:
    spec = hs(body_hash={"claim": "h", "algorithm": algorithm, "encoding": encoding})
    signed = token(SECRET, h=value)
    assert verdict(spec, signed) == "ok"
    assert verdict(spec, signed, BODY + b" ") == "body hash mismatch"
    assert verdict(spec, token(SECRET)) == "body hash mismatch"  # no claim: no proof
    assert verdict(spec, token(SECRET, h=12)) == "body hash mismatch"


# ---- fetched keys: never verified without the fetcher ---------------------------------------


def test_a_verifier_with_fetched_keys_fails_closed_on_its_own() -> None:
    spec = {"scheme": "jwt", "header": "X-Token", "algorithms": ["ES256"],
            "keys": {"endpoint": "get_key", "kid_name": "key_id", "key_path": "key"}}  # fmt: skip
    verifier = build_verifier(spec)
    fetching = fetches_keys(verifier)
    assert fetching is not None and fetches_keys(build_verifier(hs())) is None
    signed = token(EC_KEY, "ES256", kid="k1")
    with pytest.raises(VerificationFailed, match="nothing fetched it"):
        verifier.verify(req(signed), lambda v: [], NOW)
    assert fetching.key_id(req(signed)) == "k1"
    key = fetching.load_key({"key": ec_jwk(EC_KEY, "k1")}, "k1")
    fetching.verify_with_key(req(signed), lambda v: [], NOW, key)
    with pytest.raises(VerificationFailed, match="no key 'k1'"):
        fetching.load_key({"key": ec_jwk(EC_KEY, "k2")}, "k1")
    with pytest.raises(VerificationFailed, match="names no key id"):
        fetching.key_id(req(token(EC_KEY, "ES256")))


class _Answer:
    def __init__(self, document: Any) -> None:
        self.document = document
        self.headers: dict[str, str] = {}

    def json(self) -> Any:
        return self.document


class _Keys:
    """A caller answering the key endpoint with a JWK set, counting its calls."""

    def __init__(self, keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
        self.keys = keys
        self.calls: list[tuple[str, str, Any]] = []

    async def call(self, integration: str, endpoint: str, *, tenant: str, **given: Any) -> Any:
        self.calls.append((tenant, endpoint, given))
        await asyncio.sleep(0)
        return _Answer({"keys": [ec_jwk(k, kid) for kid, k in self.keys.items()]})

    def retry_policy(self, integration: str) -> Any:
        raise NotImplementedError


def test_keys_are_cached_per_tenant_bounded_and_fetched_once_for_concurrent_requests() -> None:
    spec = {"scheme": "jwt", "header": "X-Token", "algorithms": ["ES256"],
            "keys": {"endpoint": "jwks", "kid_in": "query", "key_path": "keys", "cache": "10m"}}  # fmt: skip
    verifier = fetches_keys(build_verifier(spec))
    assert verifier is not None
    caller = _Keys({"a": EC_KEY, "b": EC_KEY})
    clock = [0.0]
    keys = VerificationKeys(caller, max_keys=2, clock=lambda: clock[0])

    async def verify(tenant: str, kid: str) -> None:
        await keys.verify("acme", tenant, verifier, req(token(EC_KEY, "ES256", kid=kid)),
                          lambda v: [], NOW)  # fmt: skip

    async def scenario() -> None:
        await asyncio.gather(*(verify("t1", "a") for _ in range(5)))
        assert len(caller.calls) == 1
        assert caller.calls[0] == (
            "t1",
            "jwks",
            {"params": None, "query": {"kid": "a"}, "body": None},
        )
        await verify("t2", "a")  # another tenant: its own fetch
        assert len(caller.calls) == 2
        await verify("t1", "b")  # a third key: the least recently used (t1, a) leaves
        await verify("t1", "a")
        assert len(caller.calls) == 4
        clock[0] = 601.0  # past the cache time
        await verify("t1", "a")
        assert len(caller.calls) == 5

    asyncio.run(scenario())


# ---- simulate signs what the verifier accepts -----------------------------------------------


def _outgoing() -> OutgoingRequest:
    return OutgoingRequest("POST", "http://testserver/webhooks/acme", {}, BODY)


def test_sign_makes_tokens_the_verifier_accepts() -> None:
    spec = hs(header="Authorization", prefix="Bearer ", issuer="Vonage", required_claims=["iat"],
              body_hash={"claim": "payload_hash", "algorithm": "sha256", "encoding": "hex"})  # fmt: skip
    signed = sign(spec, _outgoing(), SECRET, NOW)
    assert signed.headers["Authorization"].startswith("Bearer ")
    request = req(signed.headers["Authorization"], header="authorization")
    build_verifier(spec).verify(request, lambda v: [v], NOW)
    es = public(pem(EC_KEY), ["ES256"], body_hash={"claim": "h", "encoding": "base64url"})
    private = EC_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signed = sign(es, _outgoing(), None, NOW, private_key=private)
    assert verdict(es, signed.headers["X-Token"]) == "ok"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _hmac_token(claims: dict[str, Any], secret: bytes, alg: str) -> str:
    import hmac

    signing = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims)}"
    mac = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _relabel(signed: str, alg: str) -> str:
    _, payload, signature = signed.split(".")
    return f"{_b64({'alg': alg, 'typ': 'JWT'})}.{payload}.{signature}"


# ---- whatever the header holds: VerificationFailed, never another error, never accepted ------

_segments = st.one_of(
    st.sampled_from([_b64({"alg": a, "kid": "k"}) for a in ("HS256", "ES256", "none", "RS256")]),
    st.dictionaries(st.sampled_from(["alg", "kid", "iat", "exp", "h", "crit"]), st.one_of(
        st.none(), st.integers(), st.text(max_size=6), st.lists(st.integers(), max_size=2)
    ), max_size=4).map(_b64),
    st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    st.text(max_size=10),
)  # fmt: skip


@settings(max_examples=300, deadline=None, database=None)
@given(parts=st.lists(_segments, min_size=1, max_size=4), body=st.binary(max_size=40))
def test_arbitrary_tokens_are_refused_cleanly(parts: list[str], body: bytes) -> None:
    value = ".".join(parts)
    specs = [
        hs(body_hash={"claim": "h"}),
        public(pem(EC_KEY), ["ES256"]),
        public(json.dumps({"keys": [ec_jwk(EC_KEY, "k")]}), ["ES256", "ES384"]),
    ]
    for spec in specs:
        assert verdict(spec, value, body) != "ok"
