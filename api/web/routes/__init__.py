"""Pages of the web UI, one module per kind of user work (account, cases, processes, reports, users)."""
