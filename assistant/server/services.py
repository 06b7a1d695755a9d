"""What every router of the app shares, handed to each endpoint through FastAPI's ``Depends``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from assistant.admission import Lines
from assistant.core.assistant import Assistant
from assistant.core.settings import ServerSettings
from assistant.indexing import IndexingJobs
from assistant.metrics import Metrics


@dataclass
class Services:
    """The assistant, the server's settings, its admission lines, the indexing jobs (None without an index) and
    its metrics."""

    assistant: Assistant
    settings: ServerSettings
    lines: Lines
    jobs: IndexingJobs | None
    metrics: Metrics

    def indexing(self) -> IndexingJobs:
        """The indexing jobs, or a 409 when this assistant has no document index."""
        if self.jobs is None:
            raise HTTPException(409, "this assistant has no document index")
        return self.jobs


def services(request: Request) -> Services:
    """The app's :class:`Services` (set by ``create_app``)."""
    shared: Services = request.app.state.services
    return shared


ServicesDep = Annotated[Services, Depends(services)]
