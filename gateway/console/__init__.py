"""The console: the web page where the command center's acceptors see reports arrive and
the device technicians see their fleet and the pipeline (`gateway run --console HOST:PORT`).

    accounts.py  accounts, sessions, the audit log (SQLite or the cluster's PostgreSQL)
    settings.py  `[console]`
    app.py       the Flask application: login, roles, CSRF, pages and their JSON
    sources.py   what the pages read: the case registry, the objects, the devices, the outbox
    i18n.py      the page's words in Chinese (the default) and English
    server.py    waitress serving the application on a thread of `gateway run`
"""
