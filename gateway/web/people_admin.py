"""The people admin API (bearer GATEWAY_ADMIN_TOKEN, like the rest of /admin/api).

- ``GET /admin/api/people?email=&phone=[&tenant=]`` -> ``{"email", "phone", "tenant",
  "total", "tables": {name: {"count", "references", "erase"}}}``: what is stored about a
  person, per table: how many rows, which (event ids, message ids, ...; the first 100), and
  what `gateway erase` does to them (redacted or deleted). Never the data itself. The same
  store function `gateway erase` finds the person with (`find_person`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config.envsubst import Secret
from gateway.errors import UsageError
from gateway.store.interfaces import PeopleStore
from gateway.store.people import Person
from gateway.web.admin_api import guarded
from gateway.web.error_handlers import error_response


def routes(store: PeopleStore, token: Secret | None) -> list[Route]:
    async def find_person(request: Request) -> Response:
        params = request.query_params
        try:
            person = Person.of(params.get("email"), params.get("phone"), params.get("tenant"))
        except UsageError as exc:
            return error_response(400, str(exc))
        return JSONResponse((await store.find_person(person)).as_dict())

    return [Route("/admin/api/people", guarded(token, find_person), methods=["GET"])]
