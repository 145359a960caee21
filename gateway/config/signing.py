"""Signing a request the way a provider would, from the same YAML `verify` section.

Used by `gateway simulate` and by tests. It is written apart from the verifier on purpose: two
readings of one declaration that must agree.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.config.envsubst import SecretRef
from gateway.config.examples import OutgoingRequest, example_request
from gateway.config.model import Integration
from gateway.errors import UsageError

_HASHES: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}


class SigningError(UsageError):
    """The example cannot be signed as asked: a secret or the private key is missing or wrong."""


def _digest(name: str, data: bytes) -> bytes:
    return hashlib.new(name, data).digest()


def _secret_name(spec: Mapping[str, Any]) -> str:
    """What the configured secret is called (never its value)."""
    value = spec.get("secret")
    first = value[0] if isinstance(value, list) and value else value
    return first.name if isinstance(first, SecretRef) else "the value written in verify.secret"


def _key(spec: Mapping[str, Any], secret: str, integration: str) -> bytes:
    if spec.get("secret_encoding") == "base64":
        text = secret.removeprefix(spec.get("secret_prefix", "")).strip()
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not key:
            raise SigningError(
                f"{integration}: verify.secret ({_secret_name(spec)}) is not valid base64,"
                " which secret_encoding: base64 expects"
            )
        return key
    return secret.encode()


def _body_value(request: OutgoingRequest, path: str) -> Any:
    value: Any = json.loads(request.body or b"{}")
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return value


def _set_body_value(request: OutgoingRequest, path: str, value: Any) -> None:
    """Write `value` at the dotted `path` of the JSON body (objects made as needed)."""
    data = json.loads(request.body or b"{}")
    if not isinstance(data, dict):
        raise SigningError(f"the example's body has no object to hold {path}")
    node = data
    *parents, last = path.split(".")
    for step in parents:
        child = node.get(step)
        if not isinstance(child, dict):
            child = node[step] = {}
        node = child
    node[last] = value
    request.body = json.dumps(data, separators=(",", ":")).encode()


def _body_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value)


def _encode(digest: bytes, encoding: str) -> str:
    return base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()


def _signed_bytes(
    template: str, request: OutgoingRequest, timestamp: str, spec: Mapping[str, Any]
) -> bytes:
    headers = {k.lower(): v for k, v in request.headers.items()}
    out = b""
    rest = template
    while rest:
        start = rest.find("{")
        if start < 0:
            out += rest.encode()
            break
        end = rest.index("}", start)
        out += rest[:start].encode()
        name = rest[start + 1 : end]
        if name == "body":
            out += request.body
        elif name == "timestamp":
            out += timestamp.encode()
        elif name == "url":
            out += request.url.encode()
        elif name == "method":
            out += request.method.encode()
        elif name == "path":
            parts = urlsplit(request.url)
            out += (parts.path + (f"?{parts.query}" if parts.query else "")).encode()
        elif name == "listed_headers":
            out += _listed_headers(spec, request)
        elif name == "id":
            out += headers.get(str(spec.get("id_header", "")).lower(), "").encode()
        elif name.startswith("header:"):
            out += headers.get(name[7:].lower(), "").encode()
        elif name.startswith("body:"):
            out += _body_text(_body_value(request, name[5:].strip())).encode()
        rest = rest[end + 1 :]
    return out


def _listed_headers(spec: Mapping[str, Any], request: OutgoingRequest) -> bytes:
    """List every header of the request (and the ones the scheme requires) as signed, in the
    declared list header, and answer them as the template's {listed_headers}."""
    listed = spec["listed_headers"]
    list_name = str(listed["header"])
    signature_name = str(spec["signature"].get("header", "")).lower()
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != signature_name}
    must = (n.lower() for n in listed.get("must_include", []))
    names = sorted({*headers, *must, list_name.lower()})
    for written in [k for k in request.headers if k.lower() == list_name.lower()]:
        del request.headers[written]
    request.headers[list_name] = listed.get("separator", ",").join(names)
    headers[list_name.lower()] = request.headers[list_name]
    joiner = str(listed.get("joiner", ";")).encode()
    return joiner.join(f"{n}:{headers.get(n, '').strip()}".encode() for n in names)


def _stamp(spec: Mapping[str, Any], request: OutgoingRequest, now: float) -> str:
    """Set the timestamp (header or body value, if declared) and the id header; return the
    timestamp text."""
    stamp_spec = spec.get("timestamp") or {}
    if stamp_spec.get("format") == "iso8601":
        timestamp = datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        timestamp = str(int(now * 1000) if stamp_spec.get("unit") == "ms" else int(now))
    if "header" in stamp_spec:
        name = stamp_spec["header"]
        for written in [k for k in request.headers if k.lower() == name.lower()]:
            del request.headers[written]  # the example's own time is replaced by now
        request.headers[name] = timestamp
    elif "body_path" in stamp_spec:
        path = stamp_spec["body_path"]
        written_as_text = isinstance(_body_value(request, path), str) or not timestamp.isdigit()
        _set_body_value(request, path, timestamp if written_as_text else int(timestamp))
    id_header = spec.get("id_header")
    if id_header and not any(k.lower() == id_header.lower() for k in request.headers):
        request.headers[id_header] = "msg_" + hashlib.sha256(request.body).hexdigest()[:24]
    return timestamp


def _asymmetric(
    spec: Mapping[str, Any], request: OutgoingRequest, private_key_pem: bytes, now: float
) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key = serialization.load_pem_private_key(private_key_pem, password=None)
    timestamp = _stamp(spec, request, now)
    signed = _signed_bytes(spec["signed"], request, timestamp, spec)
    if spec["scheme"] == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
        raw = key.sign(signed, ec.ECDSA(hashes.SHA256()))
    elif spec["scheme"] == "ed25519" and isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.sign(signed)
    else:
        raise SigningError(f"the private key does not fit scheme {spec['scheme']}")
    signature = spec["signature"]
    value = f"{signature.get('prefix', '')}{_encode(raw, signature.get('encoding', 'base64'))}"
    _place_signature(request, signature, value)


def _place_signature(request: OutgoingRequest, signature: Mapping[str, Any], value: str) -> None:
    """The signature where the scheme reads it: a body path, else its header."""
    if "body_path" in signature:
        _set_body_value(request, signature["body_path"], value)
    else:
        request.headers[signature["header"]] = value


def _hmac(
    spec: Mapping[str, Any], request: OutgoingRequest, secret: str, now: float, integration: str
) -> None:
    signature = spec["signature"]
    stamp_spec = spec.get("timestamp") or {}
    timestamp = _stamp(spec, request, now)
    signed = _signed_bytes(spec["signed"], request, timestamp, spec)
    key = _key(spec, secret, integration)
    digest = hmac.new(key, signed, _HASHES[spec["algorithm"]]).digest()
    value = _encode(digest, signature.get("encoding", "hex"))
    fmt = signature.get("format", "raw")
    if fmt == "pairs":
        sep = signature.get("separator", ",")
        assign = signature.get("assign", "=")
        parts = []
        if "param" in stamp_spec:
            parts.append(f"{stamp_spec['param']}{assign}{timestamp}")
        parts.append(f"{signature['key']}{assign}{value}")
        header_value = sep.join(parts)
    else:  # raw, or a list of one
        header_value = f"{signature.get('prefix', '')}{value}"
    _place_signature(request, signature, header_value)


def _jwt(
    spec: Mapping[str, Any],
    request: OutgoingRequest,
    secret: str | None,
    private_key: bytes | None,
    now: float,
) -> None:
    """A token the way a JWT-signing provider makes one: the declared claims, the body's
    digest, ``iat`` now; HS* with the secret, the others with the PEM private key."""
    import jwt
    from cryptography.hazmat.primitives import serialization

    algorithm = spec["algorithms"][0]
    claims: dict[str, Any] = {"iat": int(now)}
    if spec.get("issuer"):
        claims["iss"] = spec["issuer"]
    if spec.get("audience"):
        claims["aud"] = spec["audience"]
    body_hash = spec.get("body_hash")
    if body_hash:
        digest = _digest(body_hash.get("algorithm", "sha256"), request.body)
        if body_hash.get("encoding", "hex") == "hex":
            claims[body_hash["claim"]] = digest.hex()
        else:
            claims[body_hash["claim"]] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    headers: dict[str, Any] = {}
    key: Any
    if algorithm.startswith("HS"):
        if not secret:
            raise SigningError("no secret configured to sign a jwt request")
        key = secret.encode()
    else:
        if private_key is None:
            raise SigningError(
                f"{algorithm} tokens are signed with the provider's private key, which the"
                " gateway does not hold: pass --private-key with the PEM key whose public half"
                " is configured (or served by the key endpoint)"
            )
        key = serialization.load_pem_private_key(private_key, password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        headers["kid"] = hashlib.sha256(public).hexdigest()[:32]
    try:
        with warnings.catch_warnings():  # a short secret is the provider's choice
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            token = jwt.encode(claims, key, algorithm=algorithm, headers=headers)
    except (jwt.PyJWTError, TypeError, ValueError) as exc:
        raise SigningError(f"the key cannot sign {algorithm}: {exc}") from None
    request.headers[spec["header"]] = f"{spec.get('prefix', '')}{token}"


def _url_params(spec: Mapping[str, Any], request: OutgoingRequest, secret: str) -> None:
    signed = request.url
    is_form = request.headers.get("Content-Type", "").startswith("application/x-www-form")
    if is_form:
        params = parse_qsl(request.body.decode(), keep_blank_values=True)
        for name in sorted({k for k, _ in params}):
            for value in sorted({v for k, v in params if k == name}):
                signed += name + value
    elif spec.get("body_hash_param"):
        body_hash = hashlib.sha256(request.body).hexdigest()
        sep = "&" if urlsplit(request.url).query else "?"
        request.url += f"{sep}{spec['body_hash_param']}={body_hash}"
        signed = request.url
    digest = hmac.new(secret.encode(), signed.encode(), _HASHES[spec["algorithm"]]).digest()
    signature = spec["signature"]
    request.headers[signature["header"]] = _encode(digest, signature.get("encoding", "base64"))


def _token(spec: Mapping[str, Any], request: OutgoingRequest, secret: str) -> None:
    if "header" in spec:
        request.headers[spec["header"]] = secret
        return
    path = str(spec["body_path"]).split(".")
    data = json.loads(request.body or b"{}")

    def put(node: Any, parts: list[str]) -> None:
        head, rest = parts[0], parts[1:]
        each = head.endswith("[*]")
        key = head.removesuffix("[*]")
        if not rest:
            node[key] = secret
            return
        target = node.get(key)
        for item in target if each and isinstance(target, list) else [target]:
            if isinstance(item, dict):
                put(item, rest)

    put(data, path)
    request.body = json.dumps(data, separators=(",", ":")).encode()


def sign(
    spec: Mapping[str, Any],
    request: OutgoingRequest,
    secret: str | None,
    now: float | None = None,
    *,
    private_key: bytes | None = None,
    integration: str = "the integration",
) -> OutgoingRequest:
    """Add what the `verify` spec checks to `request` (in place), signed with `secret` (or,
    for ecdsa and ed25519, with the PEM `private_key` matching the configured public key).
    `integration` names it in errors."""
    scheme = spec["scheme"]
    when = time.time() if now is None else now
    if scheme == "none":
        return request
    if scheme == "jwt":
        _jwt(spec, request, secret, private_key, when)
        return request
    if scheme in ("ecdsa", "ed25519"):
        if private_key is None:
            raise SigningError(
                f"{scheme} requests are signed with the provider's private key, which the gateway"
                " does not hold: pass --private-key with the PEM key whose public half is"
                " configured"
            )
        _asymmetric(spec, request, private_key, when)
        return request
    if not secret:
        raise SigningError(f"no secret configured to sign a {scheme} request")
    if scheme == "hmac":
        _hmac(spec, request, secret, when, integration)
    elif scheme == "url_params":
        _url_params(spec, request, secret)
    elif scheme == "token":
        _token(spec, request, secret)
    else:
        raise SigningError(
            f"{scheme} requests are signed with the provider's private key, which the gateway"
            " does not hold; send a request signed by the provider instead"
        )
    return request


def _handshake_token(integration: Integration, request: OutgoingRequest, secrets: Any) -> None:
    assert integration.webhook is not None
    parts = urlsplit(request.url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    for handshake in integration.webhook.handshakes:
        names = {k for k, _ in query}
        if handshake.token_query and handshake.token_query in names:
            found = secrets(handshake.token_secret)
            if not found:
                raise SigningError(f"no secret configured for {handshake.token_query}")
            query = [(k, found[0] if k == handshake.token_query else v) for k, v in query]
            request.url = urlunsplit(parts._replace(query=urlencode(query)))


def signed_example(
    integration: Integration,
    example: Mapping[str, Any],
    url: str,
    secrets: Callable[[Any], list[str]],
    *,
    public_url: str | None = None,
    private_key: bytes | None = None,
    now: float | None = None,
) -> OutgoingRequest:
    """The request a provider would send for a declared example, signed as it signs.

    `url` is where it is sent; `public_url` (GATEWAY_PUBLIC_URL) replaces its base in what is
    signed, since URL-signing providers sign the address they were given."""
    assert integration.webhook is not None
    request = example_request(example, url)
    base = urlunsplit(urlsplit(url)._replace(path="", query="", fragment=""))
    public = (public_url or "").rstrip("/")
    if public:
        request.url = public + request.url[len(base) :]
    spec = integration.webhook.verify_spec
    if example.get("handshake"):
        _handshake_token(integration, request, secrets)
        if not any(h.verified for h in integration.webhook.handshakes):
            return _restore(request, public, base)
    found = secrets(spec.get("secret"))
    sign(
        spec,
        request,
        found[0] if found else None,
        now,
        private_key=private_key,
        integration=integration.name,
    )
    return _restore(request, public, base)


def _restore(request: OutgoingRequest, public: str, base: str) -> OutgoingRequest:
    if public:
        request.url = base + request.url[len(public) :]
    return request
