"""The files of a workspace's git repository, for GraphStudio's file browser and editors.

- ``GET /api/v1/workspaces/{ws}/tree`` — every file and directory at the branch's head
- ``GET /api/v1/workspaces/{ws}/files/{path}`` — a text file, with ``sha`` (the last
  commit that changed it) and the editor ``language``
- ``PUT /api/v1/workspaces/{ws}/files/{path}`` ``{"content", "message"?, "base_sha"?}`` —
  commit it as the caller; 409 ``stale`` when the file changed since ``base_sha``
- ``GET /api/v1/workspaces/{ws}/files/{path}/history`` — the commits that changed it
- ``POST /api/v1/workspaces/{ws}/files/{path}/restore`` ``{"sha"}`` — its version at
  ``sha`` as a new commit
- ``DELETE /api/v1/workspaces/{ws}/files/{path}?base_sha=`` — remove it in a new commit

``{ws}`` is one of the caller's workspaces; ``?owner=<user id>`` names a workspace
another user shared with the caller (their ``share/<user>`` branch). Anything else is
404, like a missing one (SPEC section 6). A path outside the workspace, absolute or in
``.git`` is 422 ``invalid_path``; writing ``panels/*`` is 422 ``panel_file`` (a panel
changes through its tools or a patch); a binary file is 415, one past
``workspaces.max_file_bytes`` 413. Details: ``docs/graphstudio/files.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from nexflow.web.app import WebServices, refusal
from nexflow.web.identity import web_user
from nexflow.workspace.api import CommitInfo, Unavailable, WorkspaceError
from nexflow.workspace.layout import author_name

if TYPE_CHECKING:
    from nexflow.workspace.browse import FileBrowser

router = APIRouter()
PREFIX = "/api/v1/workspaces/{ws}"
STATUS = {  # WorkspaceError.code -> HTTP status; anything else is 400
    "not_found": 404,
    "forbidden": 404,  # another user's workspace: like a missing one
    "invalid_path": 422,
    "panel_file": 422,
    "stale": 409,
    "quota_exceeded": 409,
    "too_large": 413,
    "binary": 415,
    "unavailable": 503,
}
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such workspace or file (or not the caller's)"},
    422: {"description": "A path outside the workspace, in .git, or a panel's file"},
    503: {"description": "Workspaces are off or not running"},
}
SHA = r"^[0-9a-fA-F]{4,64}$"


class TreeEntry(BaseModel):
    path: str
    kind: Literal["file", "dir"]
    size: int = Field(description="Bytes; 0 for a directory")


class FileOut(BaseModel):
    path: str
    content: str
    sha: str = Field(description="The last commit that changed the file: base_sha of an edit")
    language: str = Field(
        description="python, javascript, typescript, json, yaml, markdown, html, css or text"
    )


class FileWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str
    message: str | None = Field(None, max_length=500)
    base_sha: str | None = Field(
        None,
        pattern=SHA,
        description="The commit the edit was made on; 409 stale if the file changed since",
    )


class RestoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha: str = Field(pattern=SHA)


class CommitOut(BaseModel):
    sha: str
    message: str
    author: str = Field(description="The git author: a user id, or nexflow-ai for a patch")
    at: float = Field(description="Unix time of the commit")
    by_you: bool = Field(description="The caller made it")


def commit_out(c: CommitInfo, user_id: str) -> CommitOut:
    mine = c.author == author_name(user_id)
    return CommitOut(sha=c.sha, message=c.message, author=c.author, at=c.at, by_you=mine)


async def _browser(request: Request) -> FileBrowser:
    svc: WebServices = request.app.state.services
    from nexflow.workspace.lazy import LazyWorkspaces

    if not isinstance(svc.workspaces, LazyWorkspaces):
        raise Unavailable("workspaces are not enabled in this gateway")
    service = await svc.workspaces.service()
    await service.ready()
    return service.browser


@router.get(PREFIX + "/tree", response_model=list[TreeEntry], responses=ERRORS)
async def tree(ws: str, request: Request, owner: str | None = None) -> Any:
    """Every file and directory of the workspace (``.git`` excluded), in git's order."""
    try:
        browser = await _browser(request)
        entries = await browser.tree(await web_user(request), ws, owner)
    except WorkspaceError as exc:
        return refusal(exc, STATUS)
    return [TreeEntry(path=e.path, kind=e.kind, size=e.size) for e in entries]


@router.get(PREFIX + "/files/{path:path}/history", response_model=list[CommitOut], responses=ERRORS)
async def history(
    ws: str, path: str, request: Request, owner: str | None = None, limit: int = 50
) -> Any:
    """The commits that changed the file, newest first."""
    try:
        browser = await _browser(request)
        user = await web_user(request)
        commits = await browser.history(user, ws, path, owner, max(1, min(limit, 500)))
    except WorkspaceError as exc:
        return refusal(exc, STATUS)
    return [commit_out(c, user) for c in commits]


@router.post(PREFIX + "/files/{path:path}/restore", response_model=CommitOut, responses=ERRORS)
async def restore(
    ws: str, path: str, body: RestoreIn, request: Request, owner: str | None = None
) -> Any:
    """The file as it was at ``sha``, committed as a new commit."""
    try:
        browser = await _browser(request)
        user = await web_user(request)
        commit = await browser.restore(user, ws, path, body.sha, owner)
    except WorkspaceError as exc:
        return refusal(exc, STATUS)
    await _announce(request, ws, path, commit)
    return commit_out(commit, user)


@router.get(
    PREFIX + "/files/{path:path}",
    response_model=FileOut,
    responses={
        **ERRORS,
        413: {"description": "Larger than workspaces.max_file_bytes"},
        415: {"description": "A binary file"},
    },
)
async def read(ws: str, path: str, request: Request, owner: str | None = None) -> Any:
    """A text file at the branch's head."""
    try:
        browser = await _browser(request)
        found = await browser.read(await web_user(request), ws, path, owner)
    except WorkspaceError as exc:
        return refusal(exc, STATUS)
    return FileOut(path=found.path, content=found.content, sha=found.sha, language=found.language)


@router.put(
    PREFIX + "/files/{path:path}",
    response_model=CommitOut,
    responses={**ERRORS, 409: {"description": "stale: the file changed since base_sha"}},
)
async def write(
    ws: str, path: str, body: FileWrite, request: Request, owner: str | None = None
) -> Any:
    """Commit the file's new content as the caller (created when missing)."""
    try:
        browser = await _browser(request)
        user = await web_user(request)
        commit = await browser.write(
            user,
            ws,
            path,
            body.content,
            owner=owner,
            message=body.message or None,
            base=body.base_sha,
        )
    except WorkspaceError as exc:
        return refusal(exc, STATUS)
    await _announce(request, ws, path, commit)
    return commit_out(commit, user)


@router.delete(
    PREFIX + "/files/{path:path}",
    response_model=CommitOut,
    responses={**ERRORS, 409: {"description": "stale: the file changed since base_sha"}},
)
async def delete(
    ws: str,
    path: str,
    request: Request,
    owner: str | None = None,
    base_sha: Annotated[str | None, Query(pattern=SHA)] = None,
) -> Any:
    """Remove the file in a new commit (restore brings any version back)."""
    try:
        browser = await _browser(request)
        user = await web_user(request)
        commit = await browser.delete(user, ws, path, owner=owner, base=base_sha)
    except WorkspaceError as exc:
        return refusal(exc, STATUS)
    await _announce(request, ws, path, commit)
    return commit_out(commit, user)


async def _announce(request: Request, ws: str, path: str, commit: CommitInfo) -> None:
    """``file.committed`` to the caller's sockets on ``/ws/events`` (their other tabs
    refresh the tree and the history)."""
    svc: WebServices = request.app.state.services
    if svc.events is None:
        return
    from nexflow.web.events import FileCommitted
    from nexflow.workspace.browse import browse_path

    frame = FileCommitted(workspace=ws, path=browse_path(path), sha=commit.sha)
    svc.events.publish(await web_user(request), frame)
