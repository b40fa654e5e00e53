"""How a worker process's C allocator keeps the memory it frees.

An image's work allocates tens of MB (the photo, its RGBA overlay, label
maps, encoded files) and frees it all before the next image. glibc's
malloc, left to itself, gives memory at the top of its heap back to the
kernel once more than twice the largest block it has freed by munmap is
free there, so a worker fed one image after another faults the same pages
in again, zero-filled, every image: on 40 photos at 1280x960, `segment
--jobs 2` took 3,500 page faults per image against one process's 1,900,
and 14 % more CPU per image; kept, its CPU is one process's.
A worker runs one image at a time, so keeping what one image needs is
memory it will use again at once.

Only glibc has these knobs: elsewhere (macOS's allocator, musl, or an
AddressSanitizer build, whose allocator answers mallopt with "no") nothing
changes.
"""

from __future__ import annotations

import sys

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

#: Blocks this large and larger are mapped on their own (and unmapped when
#: freed); smaller ones come from the heap. 32 MiB: the most glibc's own
#: adaptive threshold ever reaches on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD = 32 << 20
#: Free memory kept at the top of the heap before it goes back to the
#: kernel: twice the threshold, the ratio glibc's adaptive rule keeps.
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD

# mallopt's parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Have this process's malloc keep up to `TRIM_THRESHOLD` bytes it frees
    for reuse, instead of unmapping and faulting them in again per image
    (glibc on Linux; see the module docstring). For coreseg's own worker
    processes: it changes how the whole process allocates.

    Returns
    -------
    bool
        True when glibc took both settings; False where there is no
        glibc malloc to tune (nothing is changed then).
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # Both or neither: setting one turns off glibc's adaptive rule for both,
    # and the other left at its start value (128 KiB) would map and unmap
    # every image-sized block.
    if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        return False
    return mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
