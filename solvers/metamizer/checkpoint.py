"""Save and load Metamizer weights safely.

Our format: a ``.safetensors`` file with the module's state_dict (keys as in the
authors' layout, ``nn.inc.double_conv.0.weight`` ...) and string metadata
(``hidden``, ``norm``, plus whatever the trainer records). Loading never
unpickles arbitrary objects: safetensors, or ``torch.load(weights_only=True)``
for the authors' format (a dict whose ``model0`` holds the state_dict).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from solvers.metamizer.model import MetamizerNet


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or does not fit the model."""


def save(path: str | Path, model: MetamizerNet, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to ``path`` (.safetensors) atomically; returns the path."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    md = {"hidden": str(model.hidden), "norm": model.norm, "bias": str(model.bias).lower(),
          "raw_step": str(model.raw_step).lower(), "variant": str(model.variant),
          "format": "metamizer-harness-2"}
    for k, v in (meta or {}).items():
        md[k] = v if isinstance(v, str) else json.dumps(v)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(state, str(tmp), metadata=md)
    tmp.chmod(0o644)
    tmp.replace(path)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - report any parse failure as one line
        raise CheckpointError(f"checkpoint {path} is not a readable safetensors file ({exc})") from None


def _load_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        meta = read_metadata(path)
        try:
            return load_file(str(path)), meta
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"checkpoint {path} is corrupt ({exc})") from None
    try:
        with warnings.catch_warnings():  # torch warns at length about a file it cannot read
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} could not be loaded safely ({first})") from None
    meta = {}
    if isinstance(obj, dict) and "model0" in obj:  # the authors' .state: {'model0': ..., 'optimizer0': ...}
        obj = obj["model0"]
        meta = {"format": "authors-state", "raw_step": "true"}  # their d_{t-1} is the raw network step
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"checkpoint {path} holds no state_dict "
                              f"(expected a dict of tensors or {{'model0': ...}})")
    return obj, meta


def infer_hidden(state: dict[str, torch.Tensor]) -> int:
    key = "nn.inc.double_conv.0.weight"
    if key not in state:
        raise CheckpointError(f"not a Metamizer state_dict: key {key!r} missing")
    return int(state[key].shape[0])


def file_layout(state: dict[str, torch.Tensor], meta: dict[str, str]) -> dict[str, Any]:
    """hidden, norm, bias, raw_step of a file: from its metadata, else from its keys."""
    hidden = int(meta["hidden"]) if "hidden" in meta else infer_hidden(state)
    norm = meta.get("norm") or ("batch" if any(k.endswith("running_mean") for k in state) else "group")
    conv_bias = any(k.endswith(("double_conv.0.bias", "double_conv.3.bias")) for k in state)
    bias = meta["bias"] == "true" if "bias" in meta else conv_bias
    raw_step = meta.get("raw_step", "false") == "true"
    return {"hidden": hidden, "norm": norm, "bias": bias, "raw_step": raw_step}


def mismatch(state: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> str:
    """Every key that differs between a file's state_dict and the model's, in one line."""
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    bad = [f"{k} file {tuple(state[k].shape)} vs model {tuple(want[k].shape)}"
           for k in want if k in state and state[k].shape != want[k].shape]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {', '.join(missing)}")
    if extra:
        parts.append(f"{len(extra)} unexpected key(s): {', '.join(extra)}")
    if bad:
        parts.append(f"{len(bad)} shape mismatch(es): {', '.join(bad)}")
    return "; ".join(parts)


def load(path: str | Path, hidden: int | None = None, norm: str | None = None,
         device: str = "cpu", variant: str | None = None) -> tuple[MetamizerNet, dict[str, str]]:
    """Build a Metamizer from ``path`` (ours or the authors' format), in eval mode.

    The layout (hidden, norm, conv biases, d_{t-1} handling) comes from the file.
    ``hidden``/``norm``/``variant``, when given and different from the file, raise a
    CheckpointError naming both; a state_dict that does not fit its own layout is
    reported key by key.
    """
    from solvers.metamizer.model import VARIANTS, variant_of

    path = Path(path)
    state, meta = _load_state(path)
    lay = file_layout(state, meta)
    file_variant = variant_of(lay["norm"], lay["bias"], lay["raw_step"])
    if hidden is not None and int(hidden) != lay["hidden"]:
        raise CheckpointError(f"checkpoint {path} has hidden={lay['hidden']}, the config asks for hidden={hidden}"
                              f" (set solver.hidden={lay['hidden']})")
    if norm is not None and norm != lay["norm"]:
        raise CheckpointError(f"checkpoint {path} has norm={lay['norm']}, the config asks for norm={norm}")
    if variant is not None and variant != file_variant:
        if variant not in VARIANTS:
            raise CheckpointError(f"unknown variant {variant!r} (set solver.variant to one of {', '.join(VARIANTS)})")
        raise CheckpointError(f"checkpoint {path} holds variant {file_variant} ({lay}), the config asks for "
                              f"variant={variant} (set solver.variant={file_variant})")
    model = MetamizerNet(**lay)
    detail = mismatch(state, model.state_dict())
    if detail:
        args = ", ".join(f"{k}={v}" for k, v in lay.items())
        raise CheckpointError(f"checkpoint {path} does not fit MetamizerNet({args}): {detail}")
    model.load_state_dict(state)
    return model.to(device).eval(), meta
