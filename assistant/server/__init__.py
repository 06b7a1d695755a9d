"""The local web endpoint (FastAPI): routers per area over the answering core; ``create_app`` builds it."""

from assistant.server.app import create_app
from assistant.server.guard import check_bind

__all__ = ["check_bind", "create_app"]
