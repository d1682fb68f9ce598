"""Label Studio over its REST API: projects, tasks, annotations, webhooks.

One Label Studio project per brandlens project (title ``brandlens/<project>``),
its labelling config a ``RectangleLabels`` with the project's brands. A task is
one frame: ``data.image`` is a presigned URL of the frame, ``data.frame`` its
s3:// URI and ``data.batch`` the batch it belongs to, so a batch's tasks are
found again after a restart. Annotations are percentages of the image size
(Label Studio's rectangle format); they become pixel boxes of the frame.

Authentication: a legacy API token (``Authorization: Token …``) or a personal
access token (a JWT refresh token, exchanged at ``/api/token/refresh``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import quoteattr  # nosec B406

import aiohttp

from brandlens_core.datasets import Box, ImageAnnotations
from brandlens_labeler.frames import Frame, LabelingError

FROM_NAME = "label"
TO_NAME = "image"
TITLE_PREFIX = "brandlens/"
WEBHOOK_ACTIONS = ["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"]
SECRET_HEADER = "X-Brandlens-Secret"  # noqa: S105 - a header name, not a secret  # nosec B105
PAGE_SIZE = 100


class LabelStudioError(Exception):
    """Label Studio answered with an error (or not at all)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def label_config(brands: list[str]) -> str:
    """The labelling interface: the image and one rectangle label per brand."""
    labels = "".join(f"\n    <Label value={quoteattr(b)}/>" for b in brands)
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="$image" zoom="true"/>\n'
        f'  <RectangleLabels name="{FROM_NAME}" toName="{TO_NAME}" strokeWidth="2">'
        f"{labels}\n  </RectangleLabels>\n"
        "</View>"
    )


def project_title(project: str) -> str:
    return f"{TITLE_PREFIX}{project}"


def rectangle(box: Box, width: int, height: int, score: float | None = None) -> dict[str, Any]:
    """A pixel box as a Label Studio rectangle result (percent of the image)."""
    result: dict[str, Any] = {
        "from_name": FROM_NAME,
        "to_name": TO_NAME,
        "type": "rectanglelabels",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {
            "x": box.left / width * 100,
            "y": box.top / height * 100,
            "width": box.width / width * 100,
            "height": box.height / height * 100,
            "rotation": 0,
            "rectanglelabels": [box.label],
        },
    }
    if score is not None:
        result["score"] = score
    return result


def task_for(
    project: str,
    frame: Frame,
    url: str,
    batch_id: str,
    prediction: tuple[str, list[tuple[Box, float]]] | None = None,
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "data": {
            "image": url,
            "frame": frame.uri,
            "batch": batch_id,
            "project": project,
            "job": frame.job_id,
            "media": frame.media_uri,
            "timecode": frame.timecode,
        }
    }
    if prediction is not None:
        model_version, boxes = prediction
        task["predictions"] = [
            {
                "model_version": model_version,
                "score": min((s for _, s in boxes), default=1.0),
                "result": [rectangle(b, frame.width, frame.height, s) for b, s in boxes],
            }
        ]
    return task


def _number(value: object, what: str, task_id: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LabelingError(f"Label Studio task {task_id}: {what} is not a number ({value!r})")
    return float(value)


def convert_annotation(
    result: list[Any], frame: Frame, brands: list[str], task_id: object
) -> list[Box]:
    """Rectangle results (percent) -> pixel boxes on the frame. Rotated rectangles become
    their axis-aligned envelope; other result types (e.g. a choice) are ignored."""
    boxes: list[Box] = []
    for item in result:
        if not isinstance(item, Mapping) or item.get("type") != "rectanglelabels":
            continue
        value = item.get("value")
        if not isinstance(value, Mapping):
            raise LabelingError(f"Label Studio task {task_id}: a rectangle has no value")
        names = value.get("rectanglelabels")
        if not isinstance(names, list) or len(names) != 1 or not isinstance(names[0], str):
            raise LabelingError(
                f"Label Studio task {task_id}: a rectangle must carry exactly one brand, "
                f"got {names!r}"
            )
        label = names[0]
        if brands and label not in brands:
            raise LabelingError(
                f"Label Studio task {task_id}: {label!r} is not a brand of the project"
            )
        x = _number(value.get("x"), "x", task_id)
        y = _number(value.get("y"), "y", task_id)
        w = _number(value.get("width"), "width", task_id)
        h = _number(value.get("height"), "height", task_id)
        angle = math.radians(_number(value.get("rotation", 0) or 0, "rotation", task_id))
        px, py = x / 100 * frame.width, y / 100 * frame.height
        pw, ph = w / 100 * frame.width, h / 100 * frame.height
        if angle:
            # Label Studio rotates the rectangle about its top-left corner.
            cos, sin = math.cos(angle), math.sin(angle)
            corners = [(0.0, 0.0), (pw, 0.0), (0.0, ph), (pw, ph)]
            xs = [px + cx * cos - cy * sin for cx, cy in corners]
            ys = [py + cx * sin + cy * cos for cx, cy in corners]
            px, py = min(xs), min(ys)
            pw, ph = max(xs) - px, max(ys) - py
        # clip to the frame: labellers drag past the edge
        left, top = max(px, 0.0), max(py, 0.0)
        right, bottom = min(px + pw, frame.width), min(py + ph, frame.height)
        if right - left < 1 or bottom - top < 1:
            continue  # a click, not a box, or entirely outside the frame
        boxes.append(
            Box(
                label, round(left, 2), round(top, 2), round(right - left, 2), round(bottom - top, 2)
            )
        )
    return boxes


def convert_task(
    task: Mapping[str, Any], frame: Frame, brands: list[str]
) -> ImageAnnotations | None:
    """The task's latest submitted annotation as the frame's labels; None if it was skipped."""
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, Mapping)]
    submitted = [a for a in annotations if not a.get("was_cancelled")]
    if not submitted:
        return None
    latest = max(submitted, key=lambda a: (str(a.get("updated_at") or ""), a.get("id") or 0))
    result = latest.get("result")
    if not isinstance(result, list):
        raise LabelingError(f"Label Studio task {task.get('id')}: annotation has no result list")
    boxes = convert_annotation(result, frame, brands, task.get("id"))
    return ImageAnnotations(frame.uri, frame.width, frame.height, boxes, group=frame.media_uri)


def task_done(task: Mapping[str, Any]) -> bool:
    """Submitted or skipped by a labeller."""
    return bool(task.get("annotations")) or int(task.get("cancelled_annotations") or 0) > 0


class LabelStudioClient:
    def __init__(self, base_url: str, token: str, *, timeout_seconds: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._access: str | None = None

    async def __aenter__(self) -> LabelStudioClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def _is_jwt(self) -> bool:
        return self._token.count(".") == 2

    async def _auth_header(self, refresh: bool = False) -> str:
        if not self._is_jwt:
            return f"Token {self._token}"
        if self._access is None or refresh:
            data = await self._send(
                "POST", "/api/token/refresh", json={"refresh": self._token}, auth=None
            )
            if not isinstance(data, Mapping) or not isinstance(data.get("access"), str):
                raise LabelStudioError("Label Studio did not return an access token")
            self._access = data["access"]
        return f"Bearer {self._access}"

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        auth = await self._auth_header()
        try:
            return await self._send(method, path, auth=auth, **kwargs)
        except LabelStudioError as exc:
            if exc.status == 401 and self._is_jwt:
                return await self._send(method, path, auth=await self._auth_header(True), **kwargs)
            raise

    async def _send(self, method: str, path: str, *, auth: str | None, **kwargs: Any) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = auth
        url = self.base_url + path
        try:
            async with self._session.request(method, url, headers=headers, **kwargs) as response:
                text = await response.text()
                if response.status >= 400:
                    detail = text[:300]
                    hint = ""
                    if response.status == 401:
                        hint = " (check BRANDLENS_LABELER_LABEL_STUDIO_TOKEN)"
                    raise LabelStudioError(
                        f"Label Studio {method} {path} answered {response.status}{hint}: {detail}",
                        response.status,
                    )
                if not text:
                    return None
                try:
                    return await response.json(content_type=None)
                except ValueError:
                    raise LabelStudioError(
                        f"Label Studio {method} {path} answered with non-JSON: {text[:200]}"
                    ) from None
        except aiohttp.ClientError as exc:
            raise LabelStudioError(
                f"cannot reach Label Studio at {self.base_url} ({exc}); check "
                "BRANDLENS_LABELER_LABEL_STUDIO_URL"
            ) from exc

    # -- projects --------------------------------------------------------------------------------

    async def find_project(self, title: str) -> dict[str, Any] | None:
        page = 1
        while True:
            data = await self.request(
                "GET", "/api/projects", params={"page": page, "page_size": PAGE_SIZE}
            )
            results = data.get("results", []) if isinstance(data, Mapping) else data
            for project in results or []:
                if isinstance(project, Mapping) and project.get("title") == title:
                    return dict(project)
            if not isinstance(data, Mapping) or not data.get("next"):
                return None
            page += 1

    async def create_project(self, title: str, config: str, description: str) -> dict[str, Any]:
        data = await self.request(
            "POST",
            "/api/projects",
            json={"title": title, "label_config": config, "description": description},
        )
        return dict(data)

    async def get_project(self, project_id: int) -> dict[str, Any]:
        return dict(await self.request("GET", f"/api/projects/{project_id}"))

    async def delete_project(self, project_id: int) -> None:
        await self.request("DELETE", f"/api/projects/{project_id}")

    async def set_label_config(self, project_id: int, config: str) -> None:
        await self.request("PATCH", f"/api/projects/{project_id}", json={"label_config": config})

    # -- tasks -----------------------------------------------------------------------------------

    async def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> int:
        data = await self.request("POST", f"/api/projects/{project_id}/import", json=tasks)
        return int(data.get("task_count", 0)) if isinstance(data, Mapping) else 0

    async def list_tasks(self, project_id: int) -> list[dict[str, Any]]:
        """Every task of the project with its annotations."""
        tasks: list[dict[str, Any]] = []
        page = 1
        while True:
            data = await self.request(
                "GET",
                "/api/tasks",
                params={
                    "project": project_id,
                    "page": page,
                    "page_size": PAGE_SIZE,
                    "fields": "all",
                },
            )
            batch = data.get("tasks", []) if isinstance(data, Mapping) else []
            tasks.extend(dict(t) for t in batch if isinstance(t, Mapping))
            total = int(data.get("total", 0)) if isinstance(data, Mapping) else 0
            if not batch or len(tasks) >= total:
                return tasks
            page += 1

    # -- webhooks --------------------------------------------------------------------------------

    async def ensure_webhook(self, project_id: int, url: str, secret: str | None) -> None:
        hooks = await self.request("GET", "/api/webhooks", params={"project": project_id})
        for hook in hooks or []:
            if isinstance(hook, Mapping) and hook.get("url") == url:
                return
        body: dict[str, Any] = {
            "project": project_id,
            "url": url,
            "send_payload": True,
            "send_for_all_actions": False,
            "is_active": True,
            "actions": WEBHOOK_ACTIONS,
        }
        if secret:
            body["headers"] = {SECRET_HEADER: secret}
        await self.request("POST", "/api/webhooks", json=body)
