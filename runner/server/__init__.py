"""The server side of the runner: webhooks, the build store, the JSON API, pages, badges and metrics.

`create_app(settings)` in `runner.server.app` builds the FastAPI application; the workers share the
store (`runner.server.store`) and the scheduling rules (`runner.server.scheduler`) with it.
"""
