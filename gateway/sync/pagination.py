"""Paging through a list endpoint, one style for each way providers page:

- ``page``: a page number (``page_param``, ``size_param``/``size``, ``first_page``);
- ``offset``: skip/limit (``offset_param``, ``limit_param``/``limit``), like Cal.com take/skip;
- ``cursor``: a cursor read from each response, sent in the query or the body (Stripe
  ``starting_after``, Google ``pageToken``, Retell ``pagination_key``);
- ``link_header``: the URL of the ``Link`` header's ``rel="next"``;
- ``next_url``: a URL in the body (Graph ``@odata.nextLink``).

A `Position` says which page to ask for; it is JSON so a run can resume from it. A page is
the last when ``has_more`` says so, when a page or offset page comes back short (or empty),
or when no cursor or next URL follows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urljoin

from gateway.config.syncs import Paginate, truthy
from gateway.expr.expressions import RENDER_ERRORS
from gateway.sync.incremental import put
from gateway.sync.spec import SyncError

_LINK = re.compile(r"<([^>]*)>([^<]*)")
_REL = re.compile(r"""\brel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Position:
    url: str | None = None  # a whole URL to call (next link, delta link)
    page: int | None = None
    offset: int | None = None
    cursor: str | None = None

    def dump(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Position:
        return cls(data.get("url"), data.get("page"), data.get("offset"), data.get("cursor"))


def first(paginate: Paginate, url: str | None = None) -> Position:
    """The first page: `url` when the run starts from a stored delta link."""
    if url is not None:
        return Position(url=url)
    if paginate.style == "page":
        return Position(page=paginate.first_page)
    if paginate.style == "offset":
        return Position(offset=0)
    return Position()


def with_position(paginate: Paginate, position: Position, query: Any, body: Any) -> tuple[Any, Any]:
    """(query, body) asking for the page at `position` (not used for a whole URL)."""
    p = paginate
    if p.style in ("page", "offset", "cursor") and p.size_param and p.size is not None:
        query, body = put(query, body, p.into, p.size_param, p.size)
    if p.param is None:
        return query, body
    if p.style == "page" and position.page is not None:
        return put(query, body, p.into, p.param, position.page)
    if p.style == "offset" and position.offset is not None:
        return put(query, body, p.into, p.param, position.offset)
    if p.style == "cursor" and position.cursor is not None:
        return put(query, body, p.into, p.param, position.cursor)
    return query, body


def link_target(header: str, rel: str = "next") -> str | None:
    """The URL of the relation `rel` in a ``Link`` header, or None."""
    for match in _LINK.finditer(header):
        for found in _REL.finditer(match[2]):
            if rel in (found[1] or found[2] or "").split():
                return match[1].strip()
    return None


def _evaluate(expr: Any, variables: Mapping[str, Any], what: str) -> Any:
    try:
        return expr.render(variables)
    except RENDER_ERRORS as exc:
        raise SyncError(f"paginate {what} ({expr.source.strip()}): {exc}") from None


def follow(
    paginate: Paginate,
    position: Position,
    *,
    response: Any,
    headers: Mapping[str, str],
    count: int,
    tenant: Mapping[str, Any],
    base_url: str,
) -> Position | None:
    """The page after `position`, or None when this was the last one."""
    p = paginate
    variables = {"response": response, "headers": headers, "tenant": tenant}
    if p.has_more is not None and not truthy(_evaluate(p.has_more, variables, "has_more")):
        return None
    after: Position | None = None
    if p.style == "page":
        if count and (p.size is None or count >= p.size or p.has_more is not None):
            after = Position(page=(position.page or p.first_page) + 1)
    elif p.style == "offset":
        if count and (p.size is None or count >= p.size or p.has_more is not None):
            after = Position(offset=(position.offset or 0) + count)
    elif p.style == "cursor" and p.cursor is not None:
        cursor = _evaluate(p.cursor, variables, "cursor")
        after = Position(cursor=str(cursor)) if cursor not in (None, "") else None
    elif p.style == "link_header":
        link = link_target(headers.get("link", ""), p.rel)
        after = Position(url=urljoin(base_url.rstrip("/") + "/", link)) if link else None
    elif p.style == "next_url" and p.next is not None:
        link = _evaluate(p.next, variables, "next")
        after = Position(url=urljoin(base_url.rstrip("/") + "/", str(link))) if link else None
    if after is not None and after == position:
        raise SyncError(f"pagination does not advance: the next page is again {after.dump()}")
    return after
