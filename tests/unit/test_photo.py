"""The photo stage: every derivative upright, bounded, stripped and sRGB; every hostile
photo refused with a stable reason code, never another exception and never a hang."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms
from PIL.JpegImagePlugin import JpegImageFile

from gateway.errors import MediaError, Reason
from gateway.media.photo import PhotoResult, Rendition, render_photo
from gateway.media.stage_settings import PhotoSettings
from tests.media_samples import (
    QUADRANT_COLOURS,
    SRGB_BLUE,
    SRGB_GREEN,
    SRGB_RED,
    as_mpo,
    colour_close,
    dms,
    encode_image,
    exif_block,
    flat_jpeg,
    mutate,
    mutations,
    png_chunk,
    png_declaring,
    quadrant_colours,
    quadrants,
    raw_exif,
    rgb_icc_profile,
    stored_as,
)
from tests.timing import Reference

ORIENTATION = 0x0112
SERIAL = "SN-0042-XYZ"  # BodySerialNumber: the device serial that must not leak


def opened(rendition: Rendition) -> Image.Image:
    image = Image.open(io.BytesIO(rendition.data))
    image.load()
    return image


def refusal(data: bytes, photo: PhotoSettings | None = None) -> MediaError:
    with pytest.raises(MediaError) as caught:
        render_photo(data, photo)
    return caught.value


def centre(image: Image.Image) -> tuple[int, ...]:
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    h, w = rgb.shape[:2]
    patch = rgb[h // 4 : max(h // 4 + 1, 3 * h // 4), w // 4 : max(w // 4 + 1, 3 * w // 4)]
    return tuple(round(v) for v in patch.mean(axis=(0, 1)))


def jpeg_markers(data: bytes) -> list[int]:
    """The markers of a JPEG's header segments, up to and including the first SOS."""
    assert data[:2] == b"\xff\xd8"
    at, markers = 2, []
    while True:
        marker = data[at + 1]
        markers.append(marker)
        if marker == 0xDA:
            return markers
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        at += 2 + length


def assert_upright(image: Image.Image, tolerance: int = 28) -> None:
    seen = quadrant_colours(image)
    for corner, colour in QUADRANT_COLOURS.items():
        assert colour_close(seen[corner], colour, tolerance), (corner, seen)


# -- orientation --------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright(orientation: int) -> None:
    upright = quadrants(96, 64)
    stored = stored_as(upright, orientation)
    if orientation != 1:  # the camera's pixels really are turned: the test has teeth
        assert quadrant_colours(stored) != quadrant_colours(upright)
    data = encode_image(
        stored, "JPEG", quality=95, exif=exif_block([(ORIENTATION, 3, orientation)])
    )

    result = render_photo(data)

    assert result.orientation == orientation
    assert (result.width, result.height) == (96, 64)
    for rendition in (result.display, result.thumbnail):
        image = opened(rendition)
        assert image.size == (rendition.width, rendition.height) == (96, 64)
        assert_upright(image)
        assert ORIENTATION not in image.getexif()


@pytest.mark.parametrize("orientation", [6, 8])
def test_a_large_sideways_photo_is_shrunk_and_stood_up(orientation: int) -> None:
    # A phone held upright stores 4000×3000 and says "turn me" (6 or 8).
    stored = stored_as(quadrants(3000, 4000), orientation)
    assert stored.size == (4000, 3000)
    data = encode_image(
        stored, "JPEG", quality=85, exif=exif_block([(ORIENTATION, 3, orientation)])
    )

    result = render_photo(data)

    assert (result.width, result.height) == (3000, 4000)
    display, thumbnail = opened(result.display), opened(result.thumbnail)
    assert display.size == (1200, 1600)
    assert thumbnail.size == (240, 320)
    assert_upright(display)
    assert_upright(thumbnail)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_heic_photos_come_out_upright(orientation: int) -> None:
    # pillow-heif writes the EXIF orientation as HEIF transforms (irot/imir), and libheif
    # applies them when decoding: whatever the route, the derivative must stand upright.
    stored = stored_as(quadrants(96, 64), orientation)
    data = encode_image(
        stored, "HEIF", quality=90, exif=exif_block([(ORIENTATION, 3, orientation)])
    )
    assert data[4:12] == b"ftypheic"

    result = render_photo(data)

    assert result.format == "HEIF"
    assert result.orientation == orientation  # as stored, though libheif stood it up
    assert (result.width, result.height) == (96, 64)
    display = opened(result.display)
    assert display.size == (96, 64)
    assert_upright(display, tolerance=32)


def test_a_png_with_an_exif_orientation_is_stood_up() -> None:
    data = encode_image(
        stored_as(quadrants(96, 64), 6), "PNG", exif=exif_block([(ORIENTATION, 3, 6)])
    )
    result = render_photo(data)
    assert result.orientation == 6
    assert_upright(opened(result.display))


# -- what the derivatives carry -----------------------------------------------------------


def camera_jpeg() -> bytes:
    """A photo as a phone writes it: orientation, make, serial, capture time, GPS, an ICC
    profile and XMP."""
    exif = exif_block(
        [(ORIENTATION, 3, 6), (0x010F, 2, "Acme"), (0x0110, 2, "Inspector 7")],
        exif=[(0x9003, 2, "2026:11:28 09:15:02"), (0x9011, 2, "+08:00"), (0xA431, 2, SERIAL)],
        gps=[(1, 2, "N"), (2, 5, dms(32.0302)), (3, 2, "E"), (4, 5, dms(120.8651))],
    )
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/">{SERIAL}</x:xmpmeta>'.encode()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode_image(
        stored_as(quadrants(640, 480), 6), "JPEG", exif=exif, xmp=xmp, icc_profile=icc
    )


def test_derivatives_carry_no_metadata_at_all() -> None:
    data = camera_jpeg()
    assert SERIAL.encode() in data
    assert b"Exif\0\0" in data

    result = render_photo(data)

    for rendition in (result.display, result.thumbnail):
        image = opened(rendition)
        assert image.format == "JPEG"
        assert not image.getexif()
        assert not {"exif", "xmp", "icc_profile", "photoshop"} & set(image.info)
        # Only JFIF's APP0 among the application segments: no APP1 (EXIF, XMP), no APP2
        # (ICC, MPF), no APP13 (IPTC)
        assert [m for m in jpeg_markers(rendition.data) if 0xE1 <= m <= 0xEF] == []
        assert b"Exif\0\0" not in rendition.data
        assert SERIAL.encode() not in rendition.data
        assert b"Acme" not in rendition.data


def quantization(quality: int) -> dict[int, list[int]]:
    """The tables Pillow's encoder writes at `quality`: how a JPEG's quality is read back."""
    reference = encode_image(Image.new("RGB", (8, 8)), "JPEG", quality=quality)
    return tables_of(Image.open(io.BytesIO(reference)))


def tables_of(image: Image.Image) -> dict[int, list[int]]:
    """The quantization tables of a JPEG as Pillow read them."""
    assert isinstance(image, JpegImageFile)
    return image.quantization


def test_derivatives_are_progressive_jpegs_at_the_configured_quality() -> None:
    result = render_photo(camera_jpeg())

    for rendition in (result.display, result.thumbnail):
        image = opened(rendition)
        assert image.info.get("progressive")
        assert image.info.get("progression")
        assert 0xC2 in jpeg_markers(rendition.data)  # SOF2: progressive DCT
    assert tables_of(opened(result.display)) == quantization(80)
    assert tables_of(opened(result.thumbnail)) == quantization(75)


def test_the_original_is_left_byte_for_byte() -> None:
    data = camera_jpeg()
    source = io.BytesIO(data)

    result = render_photo(source)

    assert source.getvalue() == data
    kept = Image.open(io.BytesIO(data)).getexif()
    assert kept[ORIENTATION] == 6
    assert kept.get_ifd(0x8825)  # the GPS IFD is still in the original
    assert result.facts.gps is not None


# -- sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "display", "thumbnail"),
    [
        pytest.param((4000, 3000), (1600, 1200), (320, 240), id="12 MP landscape"),
        pytest.param((3000, 4000), (1200, 1600), (240, 320), id="12 MP portrait"),
        pytest.param((1600, 900), (1600, 900), (320, 180), id="long edge exactly 1600"),
        pytest.param((1601, 1201), (1600, 1200), (320, 240), id="one pixel over"),
        pytest.param((800, 600), (800, 600), (320, 240), id="smaller: display not enlarged"),
        pytest.param((200, 100), (200, 100), (200, 100), id="smaller than a thumbnail"),
        pytest.param((1601, 7), (1600, 7), (320, 1), id="a sliver 1601x7"),
        pytest.param((3, 2000), (2, 1600), (1, 320), id="a sliver 3x2000"),
        pytest.param((1, 1), (1, 1), (1, 1), id="one pixel"),
    ],
)
def test_sizes(size: tuple[int, int], display: tuple[int, int], thumbnail: tuple[int, int]) -> None:
    result = render_photo(encode_image(quadrants(*size), "JPEG", quality=80))
    assert (result.width, result.height) == size
    assert opened(result.display).size == (result.display.width, result.display.height) == display
    assert opened(result.thumbnail).size == thumbnail


def test_the_sizes_are_configurable() -> None:
    photo = PhotoSettings(display_px=1024, thumb_px=128)
    result = render_photo(encode_image(quadrants(4000, 3000), "JPEG"), photo)
    assert (result.display.width, result.display.height) == (1024, 768)
    assert (result.thumbnail.width, result.thumbnail.height) == (128, 96)


@settings(max_examples=60)
@given(
    width=st.integers(1, 400),
    height=st.integers(1, 400),
    orientation=st.integers(1, 8),
)
def test_any_size_fits_its_box_keeps_its_shape_and_is_never_enlarged(
    width: int, height: int, orientation: int
) -> None:
    photo = PhotoSettings(display_px=160, thumb_px=32)
    data = encode_image(
        Image.new("RGB", (width, height), (90, 120, 150)),
        "JPEG",
        exif=exif_block([(ORIENTATION, 3, orientation)]),
    )

    result = render_photo(data, photo)

    upright = (height, width) if orientation >= 5 else (width, height)
    assert (result.width, result.height) == upright
    for rendition, box in ((result.display, 160), (result.thumbnail, 32)):
        scale = min(1.0, box / max(upright))
        assert max(rendition.width, rendition.height) == round(max(upright) * scale)
        for got, exact in zip((rendition.width, rendition.height), upright, strict=True):
            assert abs(got - exact * scale) <= 1  # the aspect ratio, to a pixel
            assert 1 <= got <= exact


# -- metadata -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("taken", "offset", "expected"),
    [
        pytest.param(
            "2026:11:28 09:15:02", "+08:00", "2026-11-28T09:15:02+08:00", id="with offset"
        ),
        pytest.param("2026:11:28 09:15:02", "-03:30", "2026-11-28T09:15:02-03:30", id="west"),
        pytest.param("2026:11:28 09:15:02", None, "2026-11-28T09:15:02", id="no offset: local"),
        pytest.param("2026:11:28 09:15:02", "   :  ", "2026-11-28T09:15:02", id="blank offset"),
        pytest.param("2026:11:28 09:15:02", "junk", "2026-11-28T09:15:02", id="junk offset"),
        pytest.param("0000:00:00 00:00:00", None, None, id="a camera without a clock"),
        pytest.param("2026:13:45 25:61:00", None, None, id="impossible date"),
        pytest.param("yesterday", None, None, id="not a date"),
        pytest.param(20261128, None, None, id="a number, not text"),
    ],
)
def test_capture_time(taken: str | int, offset: str | None, expected: str | None) -> None:
    entries = [(0x9003, 2 if isinstance(taken, str) else 4, taken)]
    if offset is not None:
        entries.append((0x9011, 2, offset))
    data = encode_image(quadrants(32, 24), "JPEG", exif=exif_block(exif=entries))

    result = render_photo(data)

    assert result.facts.captured_at == expected
    assert result.metadata()["captured_at"] == expected


@pytest.mark.parametrize(
    ("lat", "lat_ref", "lon", "lon_ref", "alt", "expected"),
    [
        pytest.param(
            32.0302, "N", 120.8651, "E", (125, 10, 0), (32.0302, 120.8651, 12.5), id="N E above"
        ),
        pytest.param(
            33.8650889,
            "S",
            151.2000833,
            "W",
            (125, 10, 1),
            (-33.8650889, -151.2000833, -12.5),
            id="S W below",
        ),
        pytest.param(
            33.8650889,
            "s",
            151.2000833,
            "w",
            None,
            (-33.8650889, -151.2000833, None),
            id="lower-case refs",
        ),
        pytest.param(0.5, "N", 0.25, "E", None, (0.5, 0.25, None), id="near null island"),
        pytest.param(
            89.9999, "N", 179.9999, "W", None, (89.9999, -179.9999, None), id="near the pole"
        ),
    ],
)
def test_exif_gps(
    lat: float,
    lat_ref: str,
    lon: float,
    lon_ref: str,
    alt: tuple[int, int, int] | None,
    expected: tuple[float, float, float | None],
) -> None:
    gps: list[Any] = [(1, 2, lat_ref), (2, 5, dms(lat)), (3, 2, lon_ref), (4, 5, dms(lon))]
    if alt is not None:
        gps += [(5, 1, alt[2]), (6, 5, [(alt[0], alt[1])])]
    data = encode_image(quadrants(32, 24), "JPEG", exif=exif_block(gps=gps))

    position = render_photo(data).metadata()["exif_gps"]

    assert position is not None
    assert position["lat"] == pytest.approx(expected[0], abs=1e-6)
    assert position["lon"] == pytest.approx(expected[1], abs=1e-6)
    assert position["alt_m"] == (None if expected[2] is None else pytest.approx(expected[2]))


NANTONG = [(1, 2, "N"), (2, 5, dms(32.0302)), (3, 2, "E"), (4, 5, dms(120.8651))]


def with_gps(**replace: Any) -> list[Any]:
    tags = {"lat_ref": 1, "lat": 2, "lon_ref": 3, "lon": 4}
    entries = {entry[0]: entry for entry in NANTONG}
    for name, entry in replace.items():
        entries[tags[name]] = entry
    return list(entries.values())


@pytest.mark.parametrize(
    "gps",
    [
        pytest.param(
            with_gps(lat=(2, 5, [(32, 0), (1, 1), (48, 1)])), id="zero denominator: degrees"
        ),
        pytest.param(
            with_gps(lon=(4, 5, [(120, 1), (51, 1), (0, 0)])), id="zero denominator: 0/0 seconds"
        ),
        pytest.param(with_gps(lat=(2, 5, [(95, 1), (0, 1), (0, 1)])), id="latitude 95"),
        pytest.param(with_gps(lon=(4, 5, [(200, 1), (0, 1), (0, 1)])), id="longitude 200"),
        pytest.param(with_gps(lat=(2, 2, "32.0302")), id="latitude as text"),
        pytest.param(with_gps(lat=(2, 5, [(32, 1), (1, 1)])), id="two parts, not three"),
        pytest.param(
            [(1, 2, "N"), (2, 5, [(0, 1)] * 3), (3, 2, "E"), (4, 5, [(0, 1)] * 3)],
            id="0,0: a receiver without a fix",
        ),
        pytest.param([(1, 2, "N"), (2, 5, dms(32.0302))], id="no longitude"),
    ],
)
def test_malformed_exif_gps_is_dropped_and_the_photo_kept(gps: list[Any]) -> None:
    data = encode_image(quadrants(32, 24), "JPEG", exif=exif_block(gps=gps))
    result = render_photo(data)
    assert result.metadata()["exif_gps"] is None
    assert opened(result.display).size == (32, 24)


def test_a_malformed_altitude_drops_only_the_altitude() -> None:
    gps = [*NANTONG, (5, 1, 0), (6, 5, [(12, 0)])]
    position = render_photo(
        encode_image(quadrants(32, 24), "JPEG", exif=exif_block(gps=gps))
    ).metadata()["exif_gps"]
    assert position["lat"] == pytest.approx(32.0302, abs=1e-6)
    assert position["alt_m"] is None


BROKEN_EXIF = [
    pytest.param(
        raw_exif([(0x010F, 2, 0xFFFF, struct.pack("<I", 26))], b"Camera\0"),
        id="a value longer than the block",
    ),
    pytest.param(b"Exif\0\0II*\0" + struct.pack("<IH", 8, 0xFFFF), id="an IFD of 65535 entries"),
    pytest.param(b"Exif\0\0II*\0" + struct.pack("<I", 0xFFFF), id="IFD0 beyond the block"),
    pytest.param(
        raw_exif([(0x8769, 4, 1, struct.pack("<I", 0xFFFF))]), id="EXIF IFD beyond the block"
    ),
    pytest.param(
        raw_exif([(0x8825, 4, 1, struct.pack("<I", 0x7FFF0000))]), id="GPS IFD beyond the block"
    ),
    pytest.param(
        raw_exif([(0x8769, 4, 1, struct.pack("<I", 8))]), id="EXIF IFD pointing at itself"
    ),
    pytest.param(b"Exif\0\0XX*\0" + struct.pack("<I", 8), id="no byte order"),
    pytest.param(raw_exif([(ORIENTATION, 2, 2, b"6\0")]), id="orientation as text"),
    pytest.param(raw_exif([(ORIENTATION, 3, 1, struct.pack("<H", 9))]), id="orientation 9"),
    pytest.param(raw_exif([(ORIENTATION, 3, 1, struct.pack("<H", 0))]), id="orientation 0"),
]


@pytest.mark.parametrize("exif", BROKEN_EXIF)
def test_a_broken_exif_block_costs_the_facts_not_the_photo(exif: bytes) -> None:
    # Pillow warns about most of these; the photo stage must neither pass the warnings on
    # (raw lines on stderr, or an exception where warnings are errors) nor fail.
    data = encode_image(quadrants(48, 32), "JPEG", exif=exif)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = render_photo(data)
    assert (result.orientation, result.facts.captured_at, result.facts.gps) == (1, None, None)
    assert_upright(opened(result.display))


# -- colour -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ink", "rgb"),
    [
        pytest.param((255, 0, 0, 0), (0, 255, 255), id="cyan"),
        pytest.param((0, 255, 0, 0), (255, 0, 255), id="magenta"),
        pytest.param((0, 0, 255, 0), (255, 255, 0), id="yellow"),
        pytest.param((0, 0, 0, 255), (0, 0, 0), id="black"),
        pytest.param((0, 0, 0, 0), (255, 255, 255), id="paper"),
    ],
)
def test_a_cmyk_jpeg_comes_out_in_its_colours_not_inverted(
    ink: tuple[int, int, int, int], rgb: tuple[int, int, int]
) -> None:
    data = encode_image(Image.new("CMYK", (32, 32), ink), "JPEG", quality=95)
    source = Image.open(io.BytesIO(data))
    # Pillow writes CMYK the Adobe way: an APP14 marker and inverted values.
    assert source.mode == "CMYK"
    assert "adobe" in source.info

    result = render_photo(data)

    display = opened(result.display)
    assert display.mode == "RGB"
    assert colour_close(centre(display), rgb, 12), centre(display)
    assert result.color.startswith("CMYK")


def test_a_grayscale_jpeg_becomes_an_rgb_derivative() -> None:
    data = encode_image(Image.new("L", (40, 30), 77), "JPEG")
    display = opened(render_photo(data).display)
    assert display.mode == "RGB"
    assert colour_close(centre(display), (77, 77, 77), 3)


def test_a_16_bit_png_keeps_its_gradient() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (16, 1))
    data = encode_image(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"

    display = opened(render_photo(data).display)

    row = np.asarray(display.convert("L"), dtype=np.int32)[8]
    assert row[0] <= 4
    assert row[-1] >= 251
    assert np.all(np.diff(row) >= -4)  # rising, give or take JPEG ringing
    assert len(set(row.tolist())) > 150  # a gradient, not two levels
    assert abs(int(row[128]) - 128) <= 6


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param(Image.new("RGBA", (32, 32), (255, 0, 0, 0)), (255, 255, 255), id="RGBA clear"),
        pytest.param(
            Image.new("RGBA", (32, 32), (255, 0, 0, 128)), (255, 127, 127), id="RGBA half"
        ),
        pytest.param(Image.new("RGBA", (32, 32), (0, 0, 255, 255)), (0, 0, 255), id="RGBA opaque"),
        pytest.param(Image.new("LA", (32, 32), (0, 128)), (127, 127, 127), id="LA half"),
    ],
)
def test_transparency_is_flattened_over_white(
    image: Image.Image, expected: tuple[int, int, int]
) -> None:
    display = opened(render_photo(encode_image(image, "PNG")).display)
    assert display.mode == "RGB"
    assert colour_close(centre(display), expected, 6), centre(display)


def test_a_palette_png_with_a_transparent_index_is_flattened_over_white() -> None:
    palette = Image.new("P", (32, 32), 0)
    palette.putpalette([0, 0, 0, 200, 20, 20])
    palette.paste(1, (0, 0, 16, 32))  # left half red, right half index 0: transparent
    display = opened(render_photo(encode_image(palette, "PNG", transparency=0)).display)
    pixels = np.asarray(display, dtype=np.int32)
    assert colour_close(pixels[16, 4], (200, 20, 20), 10)
    assert colour_close(pixels[16, 28], (255, 255, 255), 6)


# A display profile with sRGB's red and blue primaries swapped: a file value (200, 30, 30)
# under it is a blue. Converted properly it is about sRGB (24, 24, 201) (gamma 2.2 to
# the sRGB curve); left alone it would show red.
SWAPPED = rgb_icc_profile("Swapped primaries", SRGB_BLUE, SRGB_GREEN, SRGB_RED)


@pytest.mark.parametrize(
    ("image", "fmt"),
    [
        pytest.param(Image.new("RGB", (32, 32), (200, 30, 30)), "JPEG", id="JPEG"),
        pytest.param(Image.new("RGB", (32, 32), (200, 30, 30)), "PNG", id="PNG iCCP"),
        pytest.param(Image.new("RGBA", (32, 32), (200, 30, 30, 255)), "PNG", id="RGBA PNG"),
    ],
)
def test_an_embedded_profile_is_converted_to_srgb(image: Image.Image, fmt: str) -> None:
    data = encode_image(image, fmt, icc_profile=SWAPPED)

    result = render_photo(data)

    display = opened(result.display)
    assert colour_close(centre(display), (24, 24, 201), 8), centre(display)
    assert "Swapped primaries to sRGB" in result.color
    assert "icc_profile" not in display.info  # sRGB is what a JPEG without one means


@pytest.mark.parametrize(
    "icc",
    [
        pytest.param(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(), id="sRGB"),
        pytest.param(b"garbage" * 30, id="garbage"),
        pytest.param(SWAPPED[:100], id="cut short"),
        pytest.param(
            ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes(),
            id="a Lab profile on RGB",
        ),
    ],
)
def test_an_srgb_or_unusable_profile_leaves_the_colours_alone(icc: bytes) -> None:
    data = encode_image(
        Image.new("RGB", (32, 32), (200, 30, 30)), "JPEG", quality=95, icc_profile=icc
    )
    result = render_photo(data)
    assert colour_close(centre(opened(result.display)), (200, 30, 30), 6)
    assert result.color == "sRGB"


# -- formats and sizes refused ------------------------------------------------------------


def test_an_mpo_renders_its_first_image() -> None:
    data = as_mpo(
        encode_image(Image.new("RGB", (40, 30), (200, 20, 20)), "JPEG"),
        encode_image(Image.new("RGB", (40, 30), (20, 20, 200)), "JPEG"),
    )
    assert Image.open(io.BytesIO(data)).format == "MPO"
    result = render_photo(data)
    assert colour_close(centre(opened(result.display)), (200, 20, 20), 8)


# Peak memory is a per-process figure, so it is measured in a fresh interpreter.
PEAK_MEMORY = """
from pathlib import Path
from gateway.media.photo import render_photo

def vm(field):
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024

def reset_peak():
    # Writing 5 to clear_refs resets the kernel's peak-RSS mark (VmHWM) to the current RSS,
    # so the making of the samples (a full-size image) is not counted below.
    Path("/proc/self/clear_refs").write_text("5")
    return vm("VmRSS")

def peak_growth_mb(baseline):
    return vm("VmHWM") - baseline
"""


def probe(code: str) -> list[float]:
    """The numbers `code` prints, run after `PEAK_MEMORY` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY + code],
        cwd=Path(__file__).parents[2],  # the checkout, for `tests.media_samples`
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [float(word) for word in done.stdout.split()]


def test_a_48_mp_jpeg_or_mpo_is_decoded_at_reduced_size() -> None:
    # A full decode of 8000×6000 takes 48 MB of grey and then 144 MB of RGB; decoded at 1/4
    # (2000×1500, the smallest JPEG scale still covering 1600 px) it is a few MB.
    jpeg_growth, mpo_growth = probe("""
from tests.media_samples import as_mpo, flat_jpeg

jpeg = flat_jpeg(8000, 6000)
mpo = as_mpo(jpeg, flat_jpeg(64, 64))
baseline = reset_peak()
assert render_photo(jpeg).display.width == 1600
jpeg_growth = peak_growth_mb(baseline)
baseline = reset_peak()
assert render_photo(mpo).display.width == 1600
print(jpeg_growth, peak_growth_mb(baseline))
""")
    assert jpeg_growth < 60, f"JPEG: peak grew {jpeg_growth:.0f} MB"
    assert mpo_growth < 60, f"MPO: peak grew {mpo_growth:.0f} MB"


def test_a_large_png_with_transparency_is_flattened_in_bounded_memory() -> None:
    # Pillow holds 40 MP of RGBA in 160 MB. Flattened whole (a copy to convert, a canvas,
    # Pillow's premultiplied copy to resize) the peak grew 496 MB; shrunk a band at a
    # time first, 250 MB, most of it the decode.
    growth, width, *pixels = probe("""
import io
from PIL import Image

image = Image.new("RGBA", (8000, 5000), (0, 0, 0, 0))
image.paste((200, 20, 20, 255), (0, 0, 4000, 5000))  # left half opaque red, right clear
out = io.BytesIO()
image.save(out, "PNG", compress_level=1)
del image
baseline = reset_peak()
display = render_photo(out.getvalue()).display
growth = peak_growth_mb(baseline)
shown = Image.open(io.BytesIO(display.data))
print(growth, display.width, *shown.getpixel((400, 500)), *shown.getpixel((1200, 500)))
""")
    assert growth < 320, f"peak grew {growth:.0f} MB"  # twice the decoded image
    assert width == 1600
    assert colour_close(tuple(int(v) for v in pixels[:3]), (200, 20, 20), 10)
    assert colour_close(tuple(int(v) for v in pixels[3:]), (255, 255, 255), 6)


def test_a_108_mp_photo_is_within_the_default_limit() -> None:
    # The settings say 120 MP (a 108-MP phone sensor is the field's largest); Pillow's
    # own bomb warning at 89 MP must not overrule them.
    data = flat_jpeg(12000, 9000)
    result = render_photo(data)
    assert (result.width, result.height) == (12000, 9000)
    assert (result.display.width, result.display.height) == (1600, 1200)
    assert colour_close(centre(opened(result.display)), (128, 128, 128), 2)


@pytest.mark.parametrize(
    ("data", "photo"),
    [
        pytest.param(png_declaring(100_000, 100_000), None, id="PNG declaring 100000x100000"),
        pytest.param(flat_jpeg(65_000, 65_000)[:700], None, id="JPEG declaring 65000x65000"),
        pytest.param(png_declaring(12_000, 10_010), None, id="PNG of 120.1 MP: over the default"),
        pytest.param(
            png_declaring(40, 30), PhotoSettings(max_pixels=1199), id="max_pixels 1199 vs 1200"
        ),
        pytest.param(
            flat_jpeg(8000, 6000), PhotoSettings(max_pixels=40_000_000), id="48 MP vs 40 MP"
        ),
    ],
)
def test_too_many_pixels_are_refused_before_decoding(
    data: bytes, photo: PhotoSettings | None
) -> None:
    error = refusal(data, photo)
    assert error.reason is Reason.PHOTO_TOO_MANY_PIXELS


def test_max_pixels_is_inclusive() -> None:
    data = encode_image(quadrants(40, 30), "PNG")
    assert render_photo(data, PhotoSettings(max_pixels=1200)).width == 40


def test_a_decompression_bomb_is_a_few_hundred_bytes() -> None:
    assert len(png_declaring(100_000, 100_000)) < 200


# -- hostile files ------------------------------------------------------------------------

SMALL_JPEG = encode_image(
    quadrants(64, 48), "JPEG", quality=90, exif=exif_block([(ORIENTATION, 3, 6)])
)
SMALL_PNG = encode_image(quadrants(64, 48), "PNG")
SMALL_HEIC = encode_image(quadrants(64, 48), "HEIF", quality=60)


def segment_offset(data: bytes, marker: int) -> int:
    at = 2
    while data[at + 1] != marker:
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
    return at


def patched(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


JPEG_SOF = segment_offset(SMALL_JPEG, 0xC0)
JPEG_SOS = segment_offset(SMALL_JPEG, 0xDA)
PNG_IDAT = SMALL_PNG.index(b"IDAT")
HEIC_ISPE = SMALL_HEIC.index(b"ispe")

# Truncated: the file ends before the image does. Before the scan, the header walk finds
# a segment running past the end; inside the scan, libjpeg/zlib/libheif run out of data.
# Either way the terminal learns the same thing: send the whole file again.
TRUNCATED = [
    pytest.param(SMALL_JPEG[:2], id="JPEG: SOI only"),
    pytest.param(SMALL_JPEG[:12], id="JPEG: inside APP1 (EXIF)"),
    pytest.param(SMALL_JPEG[: JPEG_SOF + 6], id="JPEG: inside the frame header"),
    pytest.param(SMALL_JPEG[:JPEG_SOS], id="JPEG: just before the scan"),
    pytest.param(SMALL_JPEG[: JPEG_SOS + 6], id="JPEG: inside the scan header"),
    pytest.param(SMALL_JPEG[: JPEG_SOS + 100], id="JPEG: early in the scan"),
    pytest.param(SMALL_JPEG[: (JPEG_SOS + len(SMALL_JPEG)) // 2], id="JPEG: mid-scan"),
    pytest.param(SMALL_JPEG[:-2], id="JPEG: only EOI missing"),
    pytest.param(SMALL_PNG[:8], id="PNG: signature only"),
    pytest.param(SMALL_PNG[:20], id="PNG: inside IHDR"),
    pytest.param(SMALL_PNG[:33], id="PNG: header, no data"),
    pytest.param(SMALL_PNG[: PNG_IDAT + 20], id="PNG: inside IDAT"),
    pytest.param(SMALL_HEIC[:10], id="HEIC: inside ftyp"),
    pytest.param(SMALL_HEIC[: len(SMALL_HEIC) // 3], id="HEIC: inside meta"),
    pytest.param(SMALL_HEIC[:-10], id="HEIC: inside the coded image"),
]


@pytest.mark.parametrize("data", TRUNCATED)
def test_a_truncated_photo_is_refused_as_truncated(data: bytes) -> None:
    assert refusal(data).reason is Reason.PHOTO_TRUNCATED


# Corrupt: the file is whole, but what it says cannot be decoded.
CORRUPT = [
    pytest.param(patched(SMALL_JPEG, JPEG_SOF + 4, b"\x0c"), id="JPEG: 12-bit samples"),
    pytest.param(patched(SMALL_JPEG, JPEG_SOF + 9, b"\x00"), id="JPEG: no components"),
    pytest.param(
        patched(SMALL_JPEG, JPEG_SOS + 5, b"\x09"), id="JPEG: scan of a component not in the frame"
    ),
    pytest.param(patched(SMALL_JPEG, JPEG_SOS + 6, b"\x33"), id="JPEG: undefined Huffman table"),
    pytest.param(
        patched(SMALL_JPEG, segment_offset(SMALL_JPEG, 0xDB) + 2, b"\x00\x00"),
        id="JPEG: segment length 0",
    ),
    pytest.param(patched(SMALL_JPEG, JPEG_SOF + 1, b"\xc3"), id="JPEG: lossless (SOF3)"),
    pytest.param(patched(SMALL_PNG, 29, b"\xff"), id="PNG: IHDR CRC wrong"),
    pytest.param(patched(SMALL_PNG, 24, b"\x07"), id="PNG: bit depth 7"),
    pytest.param(patched(SMALL_PNG, 25, b"\x05"), id="PNG: colour type 5"),
    # Old behaviour: Pillow decoded this while looking for EXIF, swallowed the error,
    # and the second decode "succeeded" with an all-black image.
    pytest.param(
        patched(SMALL_PNG, PNG_IDAT + 4, b"\xde\xad\xbe\xef"), id="PNG: zlib stream damaged"
    ),
    # libheif refuses a coded image declared 64×134217792 (its security limit);
    # pillow-heif raised RuntimeError, which escaped.
    pytest.param(
        patched(SMALL_HEIC, HEIC_ISPE + 12, b"\x08"), id="HEIC: coded size beyond libheif's limit"
    ),
]


@pytest.mark.parametrize("data", CORRUPT)
def test_a_damaged_photo_is_refused_as_corrupt(data: bytes) -> None:
    assert refusal(data).reason is Reason.PHOTO_CORRUPT


def other_format(fmt: str, **options: Any) -> bytes:
    return encode_image(quadrants(16, 16), fmt, **options)


UNREADABLE = [
    pytest.param(b"", id="empty file"),
    pytest.param(b"\xff", id="one byte"),
    pytest.param(b"hello, world\n" * 50, id="text"),
    pytest.param(bytes(4096), id="zeros"),
    pytest.param(other_format("GIF"), id="GIF"),
    pytest.param(other_format("BMP"), id="BMP"),
    pytest.param(other_format("TIFF"), id="TIFF"),
    pytest.param(other_format("WEBP"), id="WebP"),
    pytest.param(b"RIFF\x24\x00\x00\x00WAVEfmt ", id="a WAV header"),
]


@pytest.mark.parametrize("data", UNREADABLE)
def test_what_is_not_a_jpeg_png_or_heic_is_unreadable(data: bytes) -> None:
    error = refusal(data)
    assert error.reason is Reason.PHOTO_UNREADABLE
    assert error.detail == "not a JPEG, PNG or HEIC image"


EMPTY = [
    pytest.param(png_declaring(0, 10), id="PNG width 0"),
    pytest.param(png_declaring(10, 0), id="PNG height 0"),
    pytest.param(patched(SMALL_JPEG, JPEG_SOF + 5, b"\x00\x00"), id="JPEG height 0"),
    pytest.param(patched(SMALL_JPEG, JPEG_SOF + 7, b"\x00\x00"), id="JPEG width 0"),
    pytest.param(png_declaring(0, 0)[:33] + png_chunk(b"IEND", b""), id="PNG 0x0 without data"),
]


@pytest.mark.parametrize("data", EMPTY)
def test_an_image_of_no_pixels_is_refused_as_empty(data: bytes) -> None:
    assert refusal(data).reason is Reason.PHOTO_EMPTY


# -- fuzz ---------------------------------------------------------------------------------

SEEDS = {
    "JPEG": SMALL_JPEG,
    "progressive JPEG": encode_image(quadrants(24, 16), "JPEG", progressive=True),
    "PNG RGBA": encode_image(quadrants(24, 16).convert("RGBA"), "PNG"),
    "PNG 16-bit": encode_image(
        Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 257), "PNG"
    ),
    "HEIC": encode_image(quadrants(24, 16), "HEIF", quality=50),
    "CMYK JPEG": encode_image(Image.new("CMYK", (16, 16), (255, 0, 0, 0)), "JPEG"),
    "MPO": as_mpo(encode_image(quadrants(16, 16), "JPEG"), encode_image(quadrants(8, 8), "JPEG")),
}

mutation = mutations(1 << 20)


def outcome(data: bytes) -> PhotoResult | MediaError:
    try:
        return render_photo(data)
    except MediaError as error:
        return error


# Never a hang: each input takes less than 100 times a small JPEG, or 3 s (tests/timing.py).
REFERENCE = Reference(lambda: render_photo(SMALL_JPEG), factor=100, floor_s=3.0)


def assert_result_or_reason(data: bytes) -> None:
    result = REFERENCE.timed(lambda: outcome(data), f"{len(data)} bytes")
    if isinstance(result, MediaError):
        assert result.reason.value.startswith("photo."), result.reason
        assert result.detail
        return
    for rendition, box in ((result.display, 1600), (result.thumbnail, 320)):
        image = opened(rendition)
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert 1 <= max(image.size) <= box


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(sorted(SEEDS)), mutations=st.lists(mutation, min_size=1, max_size=6))
def test_any_mutated_photo_gives_derivatives_or_a_reason(seed: str, mutations: list[Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_result_or_reason(mutate(SEEDS[seed], mutations))


@settings(max_examples=100)
@given(data=st.binary(max_size=512))
def test_any_bytes_give_derivatives_or_a_reason(data: bytes) -> None:
    assert_result_or_reason(data)


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_every_prefix_of_a_small_photo_gives_derivatives_or_a_reason(seed: str) -> None:
    data = SEEDS[seed]
    for end in range(0, len(data), max(1, len(data) // 150)):
        assert_result_or_reason(data[:end])
