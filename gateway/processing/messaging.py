"""Messages: a flow's `send` rendered from `templates/` into the request a channel declares.

Phone recipients are normalised to E.164 and email recipients checked before anything is
sent: an invalid recipient is a permanent failure with a clear reason, never a retry loop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gateway.config.channels import Channel
from gateway.config.model import Config
from gateway.config.templates import Resolved, resolve
from gateway.errors import Permanent
from gateway.expr.expressions import MissingValue, render_value
from gateway.expr.filters import FILTERS, e164
from gateway.locales import BASE_LOCALE, preference

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
# CLDR writes "45,00 €" and "9:00 AM" with no-break spaces, which the GSM 7-bit alphabet lacks:
# one of them would send the whole SMS as UCS-2, at less than half the characters a segment.
_PLAIN_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})


class InvalidMessage(Permanent):
    """The message cannot be sent as declared (bad recipient, unknown channel): do not retry."""


def template_environment(folder: Path) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(folder)),
        undefined=MissingValue,
        autoescape=select_autoescape(["html", "htm"]),
        keep_trailing_newline=False,
    )
    env.filters.update(FILTERS)
    return env


@dataclass(frozen=True)
class ChannelCall:
    """The endpoint call that sends one message."""

    integration: str
    endpoint: str
    params: Mapping[str, Any]
    body: Any
    channel: Channel
    recipient: str
    template: str  # the template file chosen, with its locale (or "inline")
    locale: str = BASE_LOCALE  # the language the message was written in


def whatsapp_language(template: Mapping[str, Any], locales: Sequence[str]) -> str:
    """The language a WhatsApp template message goes in: its fixed `language`, else the first
    of the message's `locales` (a region before its language) among the `languages` the
    template is approved in, else the first of those."""
    if "language" in template:
        return str(template["language"])
    approved = [str(each) for each in template["languages"]]
    return next((each for each in locales if each in approved), approved[0])


def message_locales(send: Mapping[str, Any], variables: Mapping[str, Any]) -> tuple[str, ...]:
    """The locales a message's templates are looked for in: the send's own `locale`, the
    event's `language`, the tenant's `locale`, then the base locale (each that is a locale
    code, see `gateway.locales.preference`)."""
    wanted = render_value(send["locale"], variables) if "locale" in send else None
    event = variables.get("event")
    data = event.get("data") if isinstance(event, Mapping) else None
    language = data.get("language") if isinstance(data, Mapping) else None
    tenant = variables.get("tenant")
    default = tenant.get("locale") if isinstance(tenant, Mapping) else None
    return preference(wanted, language, default)


def normalise_recipient(kind: str, to: Any, default_country: str = "") -> str:
    text = str(to or "").strip()
    if kind in ("sms", "whatsapp"):
        number = e164(text, default_country)
        if not number:
            raise InvalidMessage(f"recipient {text!r} is not a phone number in E.164 form")
        return number if kind == "sms" else number.lstrip("+")  # WhatsApp wants digits only
    if not _EMAIL.match(text):
        raise InvalidMessage(f"recipient {text!r} is not an email address")
    return text


RESOLVED_KEPT = 4096  # template files chosen, kept per Messenger


class Messenger:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.templates = template_environment(config.templates_dir)
        # (template, preferred locales) -> the file chosen: the folder is read once per pair,
        # not on every message (the set of pairs is templates x languages seen: small)
        self._resolved: dict[tuple[str, tuple[str, ...]], Resolved] = {}

    def _resolve(self, name: str, locales: tuple[str, ...]) -> Resolved:
        found = self._resolved.get((name, locales))
        if found is None:
            if len(self._resolved) >= RESOLVED_KEPT:
                self._resolved.clear()
            found = resolve(self.config.templates_dir, name, locales)
            self._resolved[(name, locales)] = found
        return found

    def _render_file(
        self, name: str, variables: Mapping[str, Any], locales: tuple[str, ...]
    ) -> tuple[str, Resolved]:
        """The text of the first translation of template `name` in `locales` (each template
        falls back on its own), rendered with that file's `locale`."""
        found = self._resolve(name, locales)
        template = self.templates.get_template(found.name)
        return template.render({**variables, "locale": found.locale}).strip(), found

    def build(
        self, send: Mapping[str, Any], variables: Mapping[str, Any], message_id: str = ""
    ) -> ChannelCall:
        """The channel call for a `send` action; `variables` are the flow's (event, tenant, now);
        `message_id`, the gateway's id of the message, for the channel body to pass along."""
        integration_name, channel_name = str(send["channel"]).split(".", 1)
        integration = self.config.integrations.get(integration_name)
        channel = integration.channels.get(channel_name) if integration else None
        if channel is None:
            raise InvalidMessage(f"no channel {send['channel']}")
        data = render_value(send.get("data") or {}, variables)
        message_vars = {**variables, "data": data}
        kind = channel.kind
        tenant = variables.get("tenant") or {}
        country = str((tenant.get("vars") or {}).get("default_country_code", ""))
        to = normalise_recipient(kind, render_value(send["to"], message_vars), country)
        message_vars["to"] = to
        locales = message_locales(send, message_vars)
        chosen: list[Resolved] = []
        if "subject_template" in send:
            subject, found = self._render_file(send["subject_template"], message_vars, locales)
            subject = " ".join(subject.split())  # one line (a header), with plain spaces
        else:
            subject = render_value(send.get("subject", ""), message_vars)
        message_vars["subject"] = subject
        text, html = "", ""
        if "template" in send:
            text, found = self._render_file(send["template"], message_vars, locales)
            chosen.append(found)
        else:
            text = str(render_value(send.get("text", ""), message_vars))
        if "html_template" in send:
            html, found = self._render_file(send["html_template"], message_vars, locales)
            chosen.append(found)
        if kind == "sms":
            text = text.translate(_PLAIN_SPACES)
        whatsapp = send.get("whatsapp_template")
        if whatsapp:
            language = whatsapp_language(whatsapp, locales)
            params = render_value(
                whatsapp.get("params") or [], {**message_vars, "locale": language}
            )
            whatsapp = {
                "name": whatsapp["name"],
                "language": language,
                "params": [str(p) for p in params],
            }
        if not text and not html and not whatsapp:
            raise InvalidMessage(f"the message to {to} would be empty")
        body = render_value(
            channel.body,
            {
                "to": to,
                "text": text,
                "html": html,
                "subject": subject,
                "whatsapp_template": whatsapp,
                "tenant": tenant,
                "data": data,
                "message_id": message_id,
            },
        )
        # the message log records the file the text came from (else the HTML's)
        template = chosen[0].name if chosen else ""
        locale = chosen[0].locale if chosen else BASE_LOCALE
        if not template and whatsapp:
            template = f"whatsapp:{whatsapp['name']}"
            locale = str(whatsapp["language"])
        return ChannelCall(
            integration_name,
            channel.endpoint,
            channel.params,
            body,
            channel,
            to,
            template or "inline",
            locale,
        )
