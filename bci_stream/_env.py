"""No network at run time: the Hugging Face libraries are told so before they are imported.

huggingface_hub reads its switches from the environment once, at import, and without
``HF_HUB_OFFLINE`` it contacts its server even for ``local_files_only=True`` loads (agent detection
in ``build_hf_headers`` fetches a registry; diffusers sends telemetry). So every entry point that may
lead to diffusers or transformers (the ``bci-stream`` command, :mod:`bci_stream.render`) calls
:func:`set_offline_environment` first. ``tests/test_offline.py`` proves no socket is opened.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",  # huggingface_hub, diffusers, transformers: local files and cache only
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",  # no usage reports, no agent-registry fetch
    "DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
}


def set_offline_environment() -> None:
    """Put the Hugging Face libraries in offline mode (idempotent, cheap).

    Sets :data:`OFFLINE_ENVIRONMENT`; if huggingface_hub (or diffusers) was imported before this
    call, also switches the module-level flags they copied from the environment at import.
    """
    os.environ.update(OFFLINE_ENVIRONMENT)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
        constants.HF_HUB_DISABLE_TELEMETRY = True
        constants.HF_HUB_DISABLE_IMPLICIT_TOKEN = True
    hub_utils = sys.modules.get("diffusers.utils.hub_utils")
    if hub_utils is not None:
        hub_utils.HF_HUB_OFFLINE = True
        hub_utils.HF_HUB_DISABLE_TELEMETRY = True
