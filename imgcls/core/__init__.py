"""Paths and pixels: the workspace, safe image reading, argument checks, file helpers (layer 1)."""

from imgcls.core.calibration import (
    calibration_error,
    fit_calibration,
    fit_temperature,
    negative_log_likelihood,
)
from imgcls.core.checks import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_number,
)
from imgcls.core.clock import isoformat, utcnow
from imgcls.core.decode_budget import DecodeCost, decode_cost
from imgcls.core.imagefiles import ImageError, file_hash, iter_image_entries, iter_image_files
from imgcls.core.images import (
    SUPPORTED_FORMATS,
    image_info,
    probe_image,
    read_image,
    read_image_resized,
)
from imgcls.core.lock import LOCK_FILE, WorkspaceLock, WorkspaceLockedError, workspace_lock
from imgcls.core.scores import calibrate, entropy, margin, top_k
from imgcls.core.upgrade import FORMAT_FILE, FORMAT_VERSION, WorkspaceFormatError, register_upgrade
from imgcls.core.workspace import (
    DEFAULT_CUTOFF,
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    THROWAWAY_CUTOFF,
    UNKNOWN_CLASS,
    Workspace,
    as_workspace,
    open_workspace,
)

__all__ = [
    "DEFAULT_CUTOFF",
    "THROWAWAY_CUTOFF",
    "UNKNOWN_CLASS",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "Workspace",
    "as_workspace",
    "open_workspace",
    "ImageError",
    "read_image",
    "read_image_resized",
    "image_info",
    "probe_image",
    "iter_image_files",
    "iter_image_entries",
    "file_hash",
    "SUPPORTED_FORMATS",
    "check_int",
    "check_number",
    "check_fraction",
    "check_choice",
    "check_bool",
    "utcnow",
    "isoformat",
    "top_k",
    "entropy",
    "margin",
    "calibrate",
    "DecodeCost",
    "decode_cost",
    "fit_temperature",
    "fit_calibration",
    "calibration_error",
    "negative_log_likelihood",
    "LOCK_FILE",
    "WorkspaceLock",
    "WorkspaceLockedError",
    "workspace_lock",
    "FORMAT_FILE",
    "FORMAT_VERSION",
    "WorkspaceFormatError",
    "register_upgrade",
]
