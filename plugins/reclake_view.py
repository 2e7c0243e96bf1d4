"""reclake's own view inside the Airflow UI: tables, snapshots (with diff and rollback),
feature drift and ingest health, served by a FastAPI app on the Airflow API server under
/reclake and listed in the UI's navigation (docs/ui.md).

Only routing and Airflow's security live here: every page is built by reclake.ui from the
same library functions the CLI uses. Every route needs a signed-in Airflow user (the UI's
`_token` cookie or a bearer token); a rollback also needs the permission to trigger
reclake_training_snapshot. Heavy imports (Airflow's API security, pyarrow, delta-rs) wait
for the first request: Airflow imports plugins in every component, tasks included.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, Form, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

URL_PREFIX = "/reclake"
# Rolling back `latest` undoes a publish, so it needs what publishing needs: the right to
# trigger the DAG that publishes snapshots.
SNAPSHOT_DAG = "reclake_training_snapshot"
SNAPSHOT_ASSET = "reclake://gold/training_samples"

_bearer = HTTPBearer(auto_error=False)


async def signed_in(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Any:
    """The Airflow user of the request, by Airflow's own check (401/403 otherwise)."""
    from airflow.api_fastapi.core_api.security import get_user

    return await get_user(request, None, credentials)


def may_trigger_snapshots(request: Request, user: Annotated[Any, Depends(signed_in)]) -> None:
    """Airflow's permission check for triggering the snapshot DAG (403 otherwise)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=SNAPSHOT_DAG)(request, user)


app = FastAPI(title="reclake", dependencies=[Depends(signed_in)], docs_url=None, redoc_url=None)


@app.exception_handler(HTTPException)
async def _refused(request: Request, exc: HTTPException) -> Response:
    """A browser without a session goes to Airflow's login and back; API clients get 401."""
    wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
    if exc.status_code == status.HTTP_401_UNAUTHORIZED and wants_page:
        from airflow.api_fastapi.app import get_auth_manager

        login = get_auth_manager().get_url_login(next_url=str(request.url))
        return RedirectResponse(login, status_code=status.HTTP_303_SEE_OTHER)
    return HTMLResponse(_message(str(exc.detail)), status_code=exc.status_code)


def _message(text: str, title: str = "refused") -> str:
    from reclake.ui.pages import message_page

    return message_page(title, text, base=URL_PREFIX)


def _settings():
    from reclake.config import load_settings

    return load_settings()


def _page(build, *args: Any, **kwargs: Any) -> HTMLResponse:
    """Render a view; the registry's expected errors become a readable page, not a 500."""
    from reclake.snapshots import SnapshotExpired, SnapshotNotFound
    from reclake.ui.views import StaleConfirmation

    try:
        return HTMLResponse(build(_settings(), *args, base=URL_PREFIX, **kwargs))
    except SnapshotNotFound as exc:
        return HTMLResponse(_message(str(exc), "not found"), status.HTTP_404_NOT_FOUND)
    except SnapshotExpired as exc:
        return HTMLResponse(_message(str(exc), "expired"), status.HTTP_410_GONE)
    except StaleConfirmation as exc:
        return HTMLResponse(_message(str(exc), "changed meanwhile"), status.HTTP_409_CONFLICT)


def published_by() -> dict[str, dict[str, str]]:
    """snapshot id -> the DAG run whose announce task emitted its asset event (Airflow DB)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = (
        select(AssetEvent.extra, AssetEvent.source_dag_id, AssetEvent.source_run_id)
        .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        .where(AssetModel.uri == SNAPSHOT_ASSET, AssetEvent.source_run_id.is_not(None))
        .order_by(AssetEvent.timestamp)
    )
    with create_session() as session:
        rows = session.execute(query).all()
    return {
        extra["snapshot_id"]: {"dag_id": dag_id, "run_id": run_id}
        for extra, dag_id, run_id in rows
        if isinstance(extra, dict) and extra.get("snapshot_id")
    }


@app.get("/", include_in_schema=False)
def index() -> RedirectResponse:
    """The view opens on the tables page."""
    return RedirectResponse(f"{URL_PREFIX}/tables")


@app.get("/tables", response_class=HTMLResponse)
def tables() -> HTMLResponse:
    """Tables: version, rows, files, maintenance, freshness, quarantine by reason."""
    from reclake.ui import views

    return _page(views.tables)


@app.get("/snapshots", response_class=HTMLResponse)
def snapshots() -> HTMLResponse:
    """Snapshots: list, latest, outcomes, publishing runs."""
    from reclake.ui import views

    return _page(views.snapshots, runs=published_by())


@app.get("/snapshots/diff", response_class=HTMLResponse)
def snapshots_diff(a: str, b: str) -> HTMLResponse:
    """Diff of two snapshots."""
    from reclake.ui import views

    return _page(views.diff, a, b)


@app.get("/snapshots/{table}/rollback", response_class=HTMLResponse)
def rollback_confirm(
    table: str, _: Annotated[None, Depends(may_trigger_snapshots)], to: str | None = None
) -> HTMLResponse:
    """The confirmation step of a rollback (needs the right to trigger the snapshot DAG)."""
    from reclake.ui import views

    return _page(views.rollback_confirm, table, to)


@app.post("/snapshots/{table}/rollback", response_class=HTMLResponse)
def rollback(
    table: str,
    _: Annotated[None, Depends(may_trigger_snapshots)],
    to: Annotated[str, Form()],
    expected_latest: Annotated[str, Form()],
    confirm: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Move latest, once confirmed on the page that showed where it points now."""
    from reclake.ui import views

    if confirm != "yes":
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "rollback not confirmed")
    return _page(views.rollback, table, to, expected_latest)


@app.get("/snapshots/{ref}", response_class=HTMLResponse)
def snapshot(ref: str) -> HTMLResponse:
    """One snapshot's details."""
    from reclake.ui import views

    return _page(views.snapshot, ref, runs=published_by())


@app.get("/features", response_class=HTMLResponse)
def features(snapshot: str | None = None) -> HTMLResponse:
    """Feature distributions and null rates beside the previous snapshot's."""
    from reclake.ui import views

    return _page(views.features, snapshot)


@app.get("/ingest", response_class=HTMLResponse)
def ingest(days: float = 7.0) -> HTMLResponse:
    """Ingest health per arrival hour over the last `days` days."""
    from reclake.ui import views

    return _page(views.ingest, days)


@app.get("/data-docs/{path:path}", include_in_schema=False)
def data_docs(path: str) -> FileResponse:
    """The lake's Great Expectations Data Docs site, behind the same sign-in."""
    from reclake.ui.views import data_docs_root

    root = data_docs_root(_settings())
    target = (root / path).resolve() if root else None
    if target is None or not target.is_relative_to(root.resolve()) or not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no Data Docs file {quote(path)}")
    return FileResponse(target)


class ReclakeViewPlugin(AirflowPlugin):
    """Mounts the reclake view on the API server and adds it to the UI's navigation."""

    name = "reclake_view"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": app, "url_prefix": URL_PREFIX, "name": "reclake"}
    ]
    # Shown inside the Airflow UI (an iframe at /plugin/reclake) from its navigation bar.
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "reclake",
            "href": f"{URL_PREFIX}/tables",
            "url_route": "reclake",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]
