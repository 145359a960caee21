"""Generated provider YAML files for the lint benchmark, modelled on the shipped Stripe file."""

from __future__ import annotations

from pathlib import Path

_RESOURCES = (
    "orders",
    "customers",
    "invoices",
    "bookings",
    "refunds",
    "messages",
    "calls",
    "users",
)
_METHODS = ("GET", "POST", "PATCH", "DELETE")

_TEMPLATE = """\
# yaml-language-server: $schema=../schemas/integration.schema.json
kind: integration
name: {name}
description: Generated provider {index} for the lint benchmark.
docs: https://docs.{host}/api

api:
  base_url: "${{{env}_BASE_URL:-https://api.{host}}}"
  auth:
    type: bearer
    token: "${{secret:{env}_API_KEY}}"
  timeout: 30s
  rate_limit:
    per_minute: {per_minute}
    per_hour: {per_hour}
    concurrent: {concurrent}
    max_wait: 30s
  circuit_breaker:
    failure_threshold: 5
    success_threshold: 2
    timeout: 60s
    half_open_max_attempts: 3
  retry:
    max_attempts: 5
    backoff: exponential
    base: 1s
    max: 60s
    jitter: true
    retry_on: [409, 429, 5xx, network]
  health:
    method: GET
    path: /v{version}/health
    expect: [200]
  endpoints:
{endpoints}
webhook:
  format: json
  max_body: 256KiB
  verify:
    scheme: hmac
    algorithm: sha256
    secret: "${{secret:{env}_WEBHOOK_SECRET}}"
    secret_encoding: utf8
    signature:
      header: X-{title}-Signature
      format: pairs
      separator: ","
      assign: "="
      key: v1
      encoding: hex
    signed: "{{timestamp}}.{{body}}"
    timestamp:
      param: t
      unit: s
      tolerance: 300s
      direction: past
  event:
    id: "{{{{ body.id }}}}"
    type: "{{{{ body.type }}}}"
  map:
    {resource}.completed:
      emit: {name}.{resource}.completed
      condition: "{{{{ body.data.object.status == 'paid' }}}}"
      data:
        object_id: "{{{{ body.data.object.id }}}}"
        customer_id: "{{{{ body.data.object.customer }}}}"
        amount_minor: "{{{{ body.data.object.amount_total }}}}"
        amount: "{{{{ body.data.object.amount_total / 100 }}}}"
        currency: "{{{{ body.data.object.currency | upper }}}}"
        email: "{{{{ body.data.object.customer_details.email or '' }}}}"
        name: "{{{{ body.data.object.customer_details.name or '' }}}}"
        created_at: "{{{{ body.created | isoformat }}}}"
    {resource}.cancelled:
      emit: {name}.{resource}.cancelled
      data:
        object_id: "{{{{ body.data.object.id }}}}"
        reason: "{{{{ body.data.object.reason or 'unknown' }}}}"

examples:
  {resource}_completed:
    description: A completed {resource} event.
    headers:
      Content-Type: application/json
    body:
      id: evt_{index:05d}aBcDeF
      object: event
      created: {created}
      type: {resource}.completed
      livemode: false
      data:
        object:
          id: obj_{index:05d}
          status: paid
          customer: cus_{index:05d}
          amount_total: {amount}
          currency: eur
          reason: null
          customer_details:
            email: user{index}@example.com
            name: User {index}
"""


def _endpoints(index: int, version: int) -> str:
    lines: list[str] = []
    for k in range(3 + index % 4):
        resource = _RESOURCES[(index + k) % len(_RESOURCES)]
        method = _METHODS[(index + k) % len(_METHODS)]
        lines.append(f"    {method.lower()}_{resource}_{k}:")
        lines.append(f"      description: {method} {resource} (variant {k}).")
        lines.append(f"      method: {method}")
        if method == "GET":
            lines.append(f"      path: /v{version}/{resource}")
        else:
            lines.append(f"      path: /v{version}/{resource}/{{{resource[:-1]}_id}}")
        if method in ("POST", "PATCH"):
            lines.append(f"      encoding: {'form' if k % 2 else 'json'}")
    return "\n".join(lines)


def provider_yaml(index: int) -> str:
    """One provider file; names, hosts, limits and endpoints vary with ``index``."""
    name = f"provider_{index:04d}"
    version = 1 + index % 3
    return _TEMPLATE.format(
        name=name,
        index=index,
        env=name.upper(),
        title=f"Provider{index:04d}",
        host=f"p{index:04d}.example.com",
        version=version,
        per_minute=60 + index % 100,
        per_hour=1000 + 10 * index,
        concurrent=5 + index % 40,
        endpoints=_endpoints(index, version),
        resource=_RESOURCES[index % len(_RESOURCES)][:-1],
        created=1_724_000_000 + index,
        amount=1000 + index,
    )


def write_providers(directory: Path, count: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for index in range(count):
        path = directory / f"provider_{index:04d}.yaml"
        path.write_text(provider_yaml(index), encoding="utf-8")
        paths.append(path)
    return paths
