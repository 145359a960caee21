"""Reference ASGI apps the gateway is measured against (bare Starlette, hand-written handler)."""
