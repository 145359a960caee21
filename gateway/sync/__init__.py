"""The sync engine: declared periodic and incremental pulls of provider records.

`spec` reads a declared sync; `pagination` and `incremental` build each page's request;
`records` decides what a page changes; `runner` runs one sync for one tenant (lease, pages
committed one by one, resume, sync log); `scheduler` runs every sync on its schedule; `events`
turns sync results into events for flows (``emit``), or records into the webhook events they
stand for (``as_webhook``); `commands` and `admin` are the CLI and the admin API.
"""
