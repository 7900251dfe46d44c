"""Small real files of every document type for tests: a PDF, PNG images (drawn here), a JPEG and a WebP."""

from __future__ import annotations

import base64
import struct
import zlib

# a 1×1 baseline JPEG and a 1×1 lossless WebP (both decode in Chromium)
TINY_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJDRENDg8QEBEQCgwS"
    "ExIQEw8QEBD/yQALCAABAAEBAREA/8wABgAQEAX/2gAIAQEAAD8A0s8g/9k=")
TINY_WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")


def pdf_bytes(size: int = 2000, text: str = "Smeta") -> bytes:
    """A small well-formed one-page PDF, padded with a comment to ``size`` bytes."""
    body = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
            + f"% {text}\n".encode())
    padding = max(0, size - len(body) - 7)
    return body + b"%" + b"x" * padding + b"\n%%EOF"


def png_bytes(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (40, 120, 200), salt: int = 0) -> bytes:
    """A real PNG of one colour (``salt`` changes a pixel so two images differ)."""
    rows = b""
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            pixel = rgb if (x, y) != (0, 0) else ((rgb[0] + salt) % 256, rgb[1], rgb[2])
            row += bytes(pixel)
        rows += bytes(row)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
