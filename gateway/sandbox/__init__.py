"""A stand-in for the outside providers in tests and demos.

One loopback HTTP server records every request and answers from declared rules, with fault
modes (429 with Retry-After, 500s, slow answers, dropped connections). Provider prefixes
(``/twilio``, ``/calcom``, ...) are just part of the path: the shipped integrations point at it
with ``TWILIO_BASE_URL=http://127.0.0.1:9100/twilio`` and the like.
"""

from gateway.sandbox.app import SandboxApp, create_sandbox_app
from gateway.sandbox.loading import load_rules, parse_rules
from gateway.sandbox.recording import RecordedRequest
from gateway.sandbox.rules import ResponseRule, RuleError
from gateway.sandbox.server import SandboxHandle, run_sandbox, running_sandbox
from gateway.sandbox.state import Sandbox

__all__ = [
    "RecordedRequest",
    "ResponseRule",
    "RuleError",
    "Sandbox",
    "SandboxApp",
    "SandboxHandle",
    "create_sandbox_app",
    "load_rules",
    "parse_rules",
    "run_sandbox",
    "running_sandbox",
]
