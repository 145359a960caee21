"""What hmac, ecdsa and ed25519 share: read the signatures, check the timestamp, build the bytes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.verify import options
from gateway.verify.body_values import BodyDocument
from gateway.verify.listed_headers import ListedHeaders
from gateway.verify.options import VerifyConfigError
from gateway.verify.signature_header import SignatureHeader
from gateway.verify.signed_template import SignedTemplate
from gateway.verify.timestamps import TimestampRule
from gateway.verify.verifier import WebhookRequest


class SignedMessage:
    __slots__ = ("_reads_body", "_template", "_timestamp", "signature")

    def __init__(self, spec: Mapping[str, Any], *, signature_length: int | None) -> None:
        timestamp_spec = options.mapping(spec, "timestamp", "verify")
        self._timestamp = TimestampRule(timestamp_spec) if timestamp_spec is not None else None
        signature_spec = options.mapping(spec, "signature", "verify")
        if signature_spec is None:
            raise VerifyConfigError("verify: missing required key 'signature'")
        self.signature = SignatureHeader(
            signature_spec,
            timestamp_param=self._timestamp.param if self._timestamp else None,
            length=signature_length,
        )
        listed_spec = options.mapping(spec, "listed_headers", "verify")
        self._template = SignedTemplate(
            options.required_text(spec, "signed", "verify"),
            id_header=options.text(spec, "id_header", "verify"),
            listed=ListedHeaders(listed_spec) if listed_spec is not None else None,
        )
        if self._template.uses_timestamp and self._timestamp is None:
            raise VerifyConfigError("verify.signed: {timestamp} needs a 'timestamp' declaration")
        if self.signature.body_path is not None and self._template.uses_body:
            raise VerifyConfigError(
                "verify.signed: {body} cannot be signed when the signature is in the body"
                " (sign {body:path} values instead)"
            )
        self._reads_body = (
            self.signature.body_path is not None
            or self._template.reads_body_values
            or (self._timestamp is not None and self._timestamp.reads_body)
        )

    @property
    def signature_headers(self) -> frozenset[str]:
        header = self.signature.header
        return frozenset({header}) if header else frozenset()

    @property
    def signs_url(self) -> bool:
        return self._template.uses_url

    def read(self, request: WebhookRequest, now: float) -> tuple[list[bytes], bytes]:
        """The candidate signatures and the bytes they must sign; fails on a stale timestamp."""
        document = BodyDocument(request.body) if self._reads_body else None
        candidates, from_signature = self.signature.read(request.headers, document)
        timestamp = None
        if self._timestamp is not None:
            timestamp = self._timestamp.accept(request.headers, from_signature, now, document)
        return candidates, self._template.render(request, timestamp, document)


class DeclaresFromMessage:
    """What a scheme signing a message (hmac, ecdsa, ed25519) declares for ingress: read from
    its `SignedMessage`. Its secret is never in the request."""

    __slots__ = ()
    _message: SignedMessage
    secret_headers: frozenset[str] = frozenset()

    @property
    def secret_body_path(self) -> str | None:
        """A signature in the body (Mailgun) is masked when stored, as signature headers are
        dropped."""
        return self._message.signature.body_path

    @property
    def signs_url(self) -> bool:
        return self._message.signs_url

    @property
    def signature_headers(self) -> frozenset[str]:
        return self._message.signature_headers
