"""Lambda's published limits, as named constants.

Every check that enforces one of these prints the measured value beside the
limit, in human units, through ``human_bytes``.
"""

from __future__ import annotations

MAX_LAYERS_PER_FUNCTION = 5

# Function code plus all its layers, unzipped.
MAX_UNZIPPED_BYTES = 262_144_000

# A direct (inline) upload is refused above this many bytes of request body;
# base64 makes that about 50 MB of zip. Larger zips must go through S3.
MAX_INLINE_REQUEST_BYTES = 69_905_067
MAX_INLINE_ZIP_BYTES = 50 * 1024 * 1024

MAX_DESCRIPTION_CHARS = 256
MAX_LICENSE_CHARS = 512
MAX_COMPATIBLE_RUNTIMES = 15
MAX_COMPATIBLE_ARCHITECTURES = 2

# A layer name as Lambda accepts it in PublishLayerVersion.
LAYER_NAME_PATTERN = r"[a-zA-Z0-9_-]{1,140}"


def human_bytes(count: int) -> str:
    """Render a byte count exactly and in MiB, the unit of Lambda's "250 MB"."""
    return f"{count:,} bytes ({count / 2**20:.1f} MiB)"
