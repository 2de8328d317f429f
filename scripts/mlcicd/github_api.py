"""GitHub's REST API: the few endpoints ml-cicd calls (workflow dispatches, issues, issue comments).

The token comes from MLCICD_GITHUB_TOKEN (what our actions pass) or GITHUB_TOKEN, and is masked
before any request. The API root is GITHUB_API_URL, so GitHub Enterprise Server works unchanged.
Transient failures (connection errors, 5xx) are retried; everything else becomes one
GitHubApiError whose message says which call failed and, for 401/403/404, which permission the
job's token needs.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any

from mlcicd import github

TOKEN_ENVS = ("MLCICD_GITHUB_TOKEN", "GITHUB_TOKEN")
API_VERSION = "2022-11-28"
PER_PAGE = 100
MAX_PAGES = 50
"""5,000 comments or issues: more means something else is wrong; stop rather than page forever."""
RETRY_DELAYS = (1.0, 3.0)
NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')


class GitHubApiError(Exception):
    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def forbidden(self) -> bool:
        """The token may not do this: a read-only token (a pull request from a fork), a missing permission."""
        return self.status in (401, 403, 404)


def token_from_env() -> str:
    for name in TOKEN_ENVS:
        if value := os.environ.get(name, "").strip():
            github.add_mask(value)
            return value
    return ""


def repository_from_env(value: str = "") -> str:
    repository = (value or os.environ.get("GITHUB_REPOSITORY", "")).strip()
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
        raise ValueError(f"{repository!r} is not owner/name (GITHUB_REPOSITORY is set in every Actions job)")
    return repository


class GitHubApi:
    def __init__(self, repository: str, token: str, api_url: str = "", timeout: float = 15.0) -> None:
        self.repository = repository
        self.token = token
        self.root = (api_url or os.environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
        self.timeout = timeout

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "ml-cicd",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """One call; `path` is relative to the repository (`issues/3`) or a full URL (a `next` link)."""
        import requests

        url = (
            path
            if path.startswith(("http://", "https://"))
            else f"{self.root}/repos/{self.repository}/{path}"
        )
        for attempt in range(len(RETRY_DELAYS) + 1):
            try:
                response = requests.request(
                    method, url, headers=self._headers(), json=body, params=params, timeout=self.timeout
                )
            except requests.RequestException as exc:
                problem, status = f"{type(exc).__name__}", None
            else:
                if response.status_code < 300:
                    return response
                status = response.status_code
                problem = f"HTTP {status} {_api_message(response)}"
                if status < 500:
                    break
            if attempt < len(RETRY_DELAYS):
                time.sleep(RETRY_DELAYS[attempt])
        raise GitHubApiError(status, f"{method} {url.split('?')[0]}: {problem}")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise GitHubApiError(response.status_code, f"{method} {path}: the answer is not JSON") from None

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, following the `Link: <…>; rel="next"` header page by page."""
        url: str | None = path
        query: dict[str, Any] | None = {**(params or {}), "per_page": PER_PAGE}
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self.request("GET", url, params=query)
            items = response.json()
            if not isinstance(items, list):
                raise GitHubApiError(
                    response.status_code, f"GET {path}: expected a list, got {type(items).__name__}"
                )
            yield from items
            match = NEXT_LINK.search(response.headers.get("Link", ""))
            url, query = (match.group(1), None) if match else (None, None)

    # --- the endpoints ---------------------------------------------------------------------

    def dispatch_workflow(self, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        """POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches (204 No Content)."""
        self.request("POST", f"actions/workflows/{workflow}/dispatches", body={"ref": ref, "inputs": inputs})

    def find_issue(self, marker: str, label: str) -> dict[str, Any] | None:
        """The open issue (not a pull request) whose body carries `marker`."""
        for issue in self.pages("issues", {"state": "open", "labels": label}):
            if "pull_request" not in issue and marker in (issue.get("body") or ""):
                return issue
        return None

    def upsert_issue(self, marker: str, label: str, title: str, body: str) -> tuple[str, dict[str, Any]]:
        """Update the open issue that carries `marker`, or open one: ("updated" | "created", issue)."""
        existing = self.find_issue(marker, label)
        if existing is not None:
            return "updated", self.json(
                "PATCH", f"issues/{existing['number']}", body={"title": title, "body": body}
            )
        return "created", self.json("POST", "issues", body={"title": title, "body": body, "labels": [label]})

    def upsert_comment(self, number: int, marker: str, body: str) -> tuple[str, dict[str, Any]]:
        """Update our comment on issue/pull request `number` (found by `marker`), or post it."""
        for comment in self.pages(f"issues/{number}/comments"):
            if marker in (comment.get("body") or ""):
                return "updated", self.json("PATCH", f"issues/comments/{comment['id']}", body={"body": body})
        return "created", self.json("POST", f"issues/{number}/comments", body={"body": body})


def _api_message(response: Any) -> str:
    try:
        document = response.json()
    except ValueError:
        return str(response.text)[:120].strip()
    message = document.get("message", "") if isinstance(document, dict) else ""
    if response.status_code == 403 and response.headers.get("X-RateLimit-Remaining") == "0":
        message += " (rate limit exhausted)"
    return message or str(document)[:120]
