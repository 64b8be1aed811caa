"""`gateway media photo|voice`: one media stage on one file, as the pipeline runs it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from gateway.cli.options import config_option, emit_json, load_or_exit
from gateway.errors import MediaError
from gateway.media.photo import render_photo
from gateway.media.voice import transcode_voice


@click.group()
def media() -> None:
    """Run one media stage on one file (for technicians): metadata as JSON on stdout."""


def _refused(error: MediaError) -> NoReturn:
    emit_json({"rejected": error.reason.value, "message": error.detail})
    sys.exit(1)


@media.command("photo")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--thumbnail", type=click.Path(dir_okay=False, path_type=Path),
              help="Where the thumbnail goes [default: OUT with .thumb.jpg].")  # fmt: skip
@config_option
def media_photo(source: Path, out: Path, thumbnail: Path | None, config_file: Path | None) -> None:
    """Make the display JPEG (OUT) and thumbnail of a photo, as the pipeline does."""
    settings = load_or_exit(config_file).media.photo()
    try:
        with source.open("rb") as stream:
            result = render_photo(stream, settings)
    except MediaError as error:
        _refused(error)
    thumbnail = thumbnail or out.with_suffix(".thumb.jpg")
    out.write_bytes(result.display.data)
    thumbnail.write_bytes(result.thumbnail.data)
    renditions = ((out, result.display), (thumbnail, result.thumbnail))
    emit_json(
        {
            "derivatives": [
                {"path": str(path), "bytes": len(r.data), "width": r.width, "height": r.height}
                for path, r in renditions
            ],
            "metadata": result.metadata(),
        }
    )


@media.command("voice")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mime", help="The type the terminal declared, e.g. audio/amr [default: probe].")
@config_option
def media_voice(source: Path, out: Path, mime: str | None, config_file: Path | None) -> None:
    """Transcode a voice note to Ogg Opus (OUT), as the pipeline does."""
    settings = load_or_exit(config_file).media.voice()
    try:
        with source.open("rb") as stream:
            result = transcode_voice(stream, mime, settings)
    except MediaError as error:
        _refused(error)
    out.write_bytes(result.data)
    derivative = {"path": str(out), "bytes": len(result.data), "duration_s": result.duration_s}
    emit_json({"derivatives": [derivative], "metadata": result.metadata()})
