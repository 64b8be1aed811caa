"""Any bytes as an inspector's photo, through `render_photo` with the pipeline's settings
(`[media]`'s defaults: 1600 px display, 320 px thumbnail, 120 MP limit): derivatives that
fit their boxes, or a `MediaError` with a photo reason."""

from __future__ import annotations

from fuzz.invariant import require
from gateway.errors import MediaError
from gateway.media.photo import render_photo
from gateway.media.settings import MediaSettings

SETTINGS = MediaSettings().photo()


def one_input(data: bytes) -> None:
    try:
        result = render_photo(data, SETTINGS)
    except MediaError as error:
        require(error.reason.value.startswith("photo."), f"reason {error.reason}")
        require(bool(error.detail), f"{error.reason} without a detail")
        return
    for rendition, box in (
        (result.display, SETTINGS.display_px),
        (result.thumbnail, SETTINGS.thumb_px),
    ):
        require(1 <= max(rendition.width, rendition.height) <= box, f"{rendition.width}×…")
        require(rendition.data.startswith(b"\xff\xd8"), "a derivative that is no JPEG")
