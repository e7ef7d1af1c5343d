"""Static files shipped inside the package (divide_support/web/static/), served under /static/.

Nothing a page of ours loads comes from elsewhere: municipal intranets block CDNs.
"""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import Any

from starlette.responses import Response
from starlette.staticfiles import StaticFiles

# Not left to the platform's MIME table (some map .js to text/plain): with
# X-Content-Type-Options: nosniff a browser runs a script only under a JavaScript type.
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


class PackageStaticFiles(StaticFiles):
    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result,
                      scope: Any, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        media_type = _MEDIA_TYPES.get(PurePath(full_path).suffix)
        if media_type and "content-type" in response.headers:
            response.headers["content-type"] = media_type
        return response


def static_files() -> StaticFiles:
    """The app to mount at /static (a later staff console's assets live in the same folder)."""
    return PackageStaticFiles(packages=[("divide_support.web", "static")])
