"""``scheme: jwt``: a signed JSON Web Token in a header (Vonage, Plaid, Netlify).

The token's header names its algorithm, and it must be one the YAML lists: never ``none``,
and a list never mixes the shared-secret family (HS*) with public keys (ES*, RS*, PS*), so an
HMAC secret is never tried for a token that claims ES256, nor a public key's text used as an
HMAC secret (alg confusion). Keys come from the tenant's credentials (``secret`` for HS*,
``public_key`` as PEM or JWK for the others) or are fetched by the token's ``kid`` from an
endpoint of the integration (``keys``); fetching is the outbound engine's
(`gateway.outbound.verification_keys`), which hands the fetched key to `verify_with_key`.

Claims are checked here, against the `now` the caller passes (PyJWT's own clock checks are
off): ``iss`` and ``aud`` when declared, ``iat``/``exp``/``nbf`` within the tolerance, the
claims listed as required, and a body-hash claim (the digest of the raw body, hex or
base64url) compared in constant time. Signatures are PyJWT's (HMAC compared in constant time,
ECDSA and RSA through `cryptography`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.verify import options
from gateway.verify.encoding import text_bytes, wire_bytes
from gateway.verify.options import VerifyConfigError
from gateway.verify.verifier import KeyFetch, SecretLookup, VerificationFailed, WebhookRequest

SHARED = ("HS256", "HS384", "HS512")
PUBLIC = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
ALGORITHMS = SHARED + PUBLIC
BODY_HASHES = ("sha256", "sha384", "sha512")
HASH_ENCODINGS = ("hex", "base64url")
KID_PLACES = ("body", "query", "path")
# A bound on the work one request can cause: no provider sends tokens this long.
MAX_TOKEN = 16 * 1024
MAX_KID = 256
_KEY_CACHE_SIZE = 256
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
# PyJWT's own claim checks are off: this module checks them against the caller's clock.
_DECODE_OPTIONS: Any = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
}
_DECODER = jwt.PyJWT()
_KEYS = frozenset(
    {
        "scheme",
        "header",
        "prefix",
        "algorithms",
        "secret",
        "public_key",
        "keys",
        "issuer",
        "audience",
        "required_claims",
        "body_hash",
        "tolerance",
    }
)
_BODY_HASH_KEYS = frozenset({"claim", "algorithm", "encoding"})
_FETCH_KEYS = frozenset({"endpoint", "kid_in", "kid_name", "key_path", "cache", "expired_field"})


class BodyHash(NamedTuple):
    claim: str
    algorithm: str
    encoding: str

    def matches(self, sent: Any, body: bytes) -> bool:
        if not isinstance(sent, str):
            return False
        digest = hashlib.new(self.algorithm, body).digest()
        if self.encoding == "hex":
            return hmac.compare_digest(text_bytes(sent.lower()), digest.hex().encode("ascii"))
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=")
        return hmac.compare_digest(text_bytes(sent.rstrip("=")), expected)


class JwtVerifier:
    __slots__ = (
        "_algorithms",
        "_audience",
        "_body_hash",
        "_issuer",
        "_prefix",
        "_public_key",
        "_required",
        "_secret",
        "_shared",
        "_tolerance",
        "header",
        "key_fetch",
    )

    signs_url = False
    secret_headers: frozenset[str] = frozenset()
    secret_body_path: str | None = None

    def __init__(self, spec: Mapping[str, Any]) -> None:
        options.reject_unknown(spec, "verify", _KEYS)
        self.header = options.required_text(spec, "header", "verify").lower()
        self._prefix = options.text(spec, "prefix", "verify") or ""
        self._algorithms = _algorithms(spec)
        self._shared = self._algorithms[0] in SHARED
        sources = [key for key in ("secret", "public_key", "keys") if spec.get(key) is not None]
        if len(sources) != 1:
            raise VerifyConfigError("verify: give exactly one of 'secret', 'public_key', 'keys'")
        source = sources[0]
        if self._shared != (source == "secret"):
            family = "HS*" if self._shared else "ES*, RS* and PS*"
            needs = "'secret'" if self._shared else "'public_key' or 'keys'"
            raise VerifyConfigError(
                f"verify.{source}: {family} algorithms are checked with {needs}"
            )
        secret = options.secret_value(spec, source, "verify") if source != "keys" else None
        self._secret = secret if source == "secret" else None
        self._public_key = secret if source == "public_key" else None
        fetch = options.mapping(spec, "keys", "verify")
        self.key_fetch = _key_fetch(fetch) if fetch is not None else None
        self._issuer = options.text(spec, "issuer", "verify") or None
        self._audience = options.text(spec, "audience", "verify") or None
        self._required = _names(spec, "required_claims")
        hash_spec = options.mapping(spec, "body_hash", "verify")
        self._body_hash = _body_hash(hash_spec) if hash_spec is not None else None
        self._tolerance = options.duration(spec, "tolerance", "verify", "5m")

    @property
    def signature_headers(self) -> frozenset[str]:
        """The token's header: a stored token replays the request."""
        return frozenset({self.header})

    def verify(self, request: WebhookRequest, secrets: SecretLookup, now: float) -> None:
        if self.key_fetch is not None:  # only the outbound engine can fetch the key
            raise VerificationFailed("the token's key is fetched, and nothing fetched it")
        token, header = self._read(request)
        if self._secret is not None:
            keys: list[Any] = [text_bytes(s) for s in secrets(self._secret) if s]
            if not keys:
                raise VerificationFailed("no secret configured for this integration")
        else:
            keys = _public_keys(secrets(self._public_key), header.get("kid"))
        self._check(token, header["alg"], keys, request.body, now)

    def key_id(self, request: WebhookRequest) -> str:
        """The ``kid`` of the token's (unverified) header: which key to fetch."""
        _, header = self._read(request)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID:
            raise VerificationFailed("token names no key id")
        return kid

    def load_key(self, document: Any, kid: str) -> Any:
        """The public key a fetched answer holds for `kid` (a JWK, or a list to pick from)."""
        assert self.key_fetch is not None
        value = document
        for name in self.key_fetch.key_path:
            value = value.get(name) if isinstance(value, Mapping) else None
        if isinstance(value, list):
            value = next((k for k in value if isinstance(k, Mapping) and k.get("kid") == kid), None)
        if not isinstance(value, Mapping) or value.get("kid", kid) != kid:
            raise VerificationFailed(f"the key endpoint has no key {kid!r}")
        expired = self.key_fetch.expired_field
        if expired is not None and value.get(expired) is not None:
            raise VerificationFailed(f"key {kid!r} has expired")
        key = _load_jwk(json.dumps(value, sort_keys=True))
        if key is None:
            raise VerificationFailed("the fetched key is not a public key")
        return key

    def verify_with_key(
        self, request: WebhookRequest, secrets: SecretLookup, now: float, key: Any
    ) -> None:
        """Verify with a fetched key (from `load_key`)."""
        token, header = self._read(request)
        self._check(token, header["alg"], [key], request.body, now)

    def _read(self, request: WebhookRequest) -> tuple[str, dict[str, Any]]:
        value = request.headers.get(self.header)
        if value is None:
            raise VerificationFailed(f"missing header {self.header}")
        token = value.strip()
        if self._prefix:
            if token[: len(self._prefix)].lower() != self._prefix.lower():
                raise VerificationFailed(f"header {self.header} lacks its prefix")
            token = token[len(self._prefix) :].strip()
        if not token or len(token) > MAX_TOKEN:
            raise VerificationFailed(f"no token in header {self.header}")
        try:
            header = jwt.get_unverified_header(wire_bytes(token))
        except (jwt.PyJWTError, ValueError, TypeError):
            raise VerificationFailed("malformed token") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise VerificationFailed(f"token algorithm {str(alg)[:16]!r} is not allowed")
        return token, header

    def _check(self, token: str, alg: str, keys: list[Any], body: bytes, now: float) -> None:
        claims: dict[str, Any] | None = None
        for key in keys:
            if not _fits(key, alg):
                continue
            try:
                with warnings.catch_warnings():
                    # A short HMAC secret is the provider's (or the integrator's) choice.
                    warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
                    decoded = _DECODER.decode_complete(
                        token, key=key, algorithms=[alg], options=_DECODE_OPTIONS
                    )
            except jwt.InvalidSignatureError:
                continue
            except (jwt.PyJWTError, ValueError, TypeError):
                raise VerificationFailed("malformed token") from None
            claims = decoded["payload"]
            break
        if claims is None:
            raise VerificationFailed("signature mismatch")
        if not isinstance(claims, dict):
            raise VerificationFailed("token claims are not an object")
        self._claims(claims, body, now)

    def _claims(self, claims: dict[str, Any], body: bytes, now: float) -> None:
        for name in self._required:
            if name not in claims:
                raise VerificationFailed(f"token lacks claim {name}")
        if self._issuer is not None and claims.get("iss") != self._issuer:
            raise VerificationFailed("token issuer mismatch")
        if self._audience is not None:
            audience = claims.get("aud")
            given = audience if isinstance(audience, list) else [audience]
            if self._audience not in given:
                raise VerificationFailed("token audience mismatch")
        tolerance = self._tolerance
        iat = _time_claim(claims, "iat")
        if iat is not None and not (now - tolerance <= iat <= now + tolerance):
            raise VerificationFailed("token iat outside tolerance")
        exp = _time_claim(claims, "exp")
        if exp is not None and now >= exp + tolerance:
            raise VerificationFailed("token expired")
        nbf = _time_claim(claims, "nbf")
        if nbf is not None and now + tolerance < nbf:
            raise VerificationFailed("token not valid yet")
        check = self._body_hash
        if check is not None and not check.matches(claims.get(check.claim), body):
            raise VerificationFailed("body hash mismatch")


def _algorithms(spec: Mapping[str, Any]) -> tuple[str, ...]:
    names = _names(spec, "algorithms")
    if not names:
        raise VerifyConfigError("verify: missing required key 'algorithms'")
    for name in names:
        if name not in ALGORITHMS:
            raise VerifyConfigError(
                f"verify.algorithms: {name!r} is not one of {', '.join(ALGORITHMS)}"
            )
    if any(n in SHARED for n in names) and any(n in PUBLIC for n in names):
        raise VerifyConfigError(
            "verify.algorithms: mixes HS* (a shared secret) with public-key algorithms"
        )
    return names


def _names(spec: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = spec.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise VerifyConfigError(f"verify.{key}: expected a list of names")
    return tuple(value)


def _body_hash(spec: Mapping[str, Any]) -> BodyHash:
    where = "verify.body_hash"
    options.reject_unknown(spec, where, _BODY_HASH_KEYS)
    return BodyHash(
        options.required_text(spec, "claim", where),
        options.choice(spec, "algorithm", where, BODY_HASHES),
        options.choice(spec, "encoding", where, HASH_ENCODINGS),
    )


def _key_fetch(spec: Mapping[str, Any]) -> KeyFetch:
    where = "verify.keys"
    options.reject_unknown(spec, where, _FETCH_KEYS)
    path = options.text(spec, "key_path", where) or ""
    return KeyFetch(
        options.required_text(spec, "endpoint", where),
        options.choice(spec, "kid_in", where, KID_PLACES),
        options.text(spec, "kid_name", where) or "kid",
        tuple(part for part in path.split(".") if part),
        options.duration(spec, "cache", where, "1h"),
        options.text(spec, "expired_field", where) or None,
    )


def _time_claim(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VerificationFailed(f"token claim {name} is not a number")
    return float(value)


def _fits(key: Any, alg: str) -> bool:
    """Whether `key` is of the kind `alg` needs: the guard against alg confusion."""
    if alg in SHARED:
        return isinstance(key, bytes)
    if alg.startswith("ES"):
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _CURVES[alg])
    return isinstance(key, rsa.RSAPublicKey)


def _public_keys(texts: list[str], kid: Any) -> list[Any]:
    """The configured public keys (PEM, a JWK or a JWK set), those named `kid` first."""
    keys: list[tuple[bool, Any]] = []
    for text in texts:
        if not text:
            continue
        loaded = _load_public(text.strip())
        if not loaded:
            raise VerificationFailed("configured public key is not valid")
        keys.extend((found_kid is None or found_kid == kid, key) for found_kid, key in loaded)
    if not keys:
        raise VerificationFailed("no public key configured for this integration")
    return [key for matches, key in sorted(keys, key=lambda k: not k[0])]


@lru_cache(maxsize=_KEY_CACHE_SIZE)
def _load_public(text: str) -> tuple[tuple[str | None, Any], ...]:
    """(kid, key) pairs from PEM, a JWK or a JWK set; empty when the text is none of those."""
    if text.startswith("-----BEGIN"):
        try:
            key = load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
            return ()
        if isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            return ((None, key),)
        return ()
    try:
        document = json.loads(text)
    except ValueError:
        return ()
    items = document.get("keys") if isinstance(document, dict) else None
    found: list[tuple[str | None, Any]] = []
    for item in items if isinstance(items, list) else [document]:
        if not isinstance(item, dict):
            return ()
        key = _load_jwk(json.dumps(item, sort_keys=True))
        if key is None:
            return ()
        kid = item.get("kid")
        found.append((kid if isinstance(kid, str) else None, key))
    return tuple(found)


@lru_cache(maxsize=_KEY_CACHE_SIZE)
def _load_jwk(text: str) -> Any:
    """The public key of a JWK (EC or RSA), or None; a JWK with private parts is refused."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or "d" in data:
            return None
        key = jwt.PyJWK(data).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    if isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return key
    return None
