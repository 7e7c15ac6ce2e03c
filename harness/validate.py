"""One validation layer for every user-facing config value, run before anything is written.
Over 300 lines: one pydantic model per config section plus the signature introspection they share.

``config_error(cfg, added)`` takes a composed config (what a job will see) and
returns one line naming the first bad key, its value and the fix, or None.

* Top-level keys and ``budget.*``: a pydantic model (``TopLevel``), strict (no
  string for a number, no 1 for ``true``), with ranges.
* ``problem.*``: the generator's signature (``problems.GENERATORS[name]`` plus
  ``make_problem``'s n, h, w): names, annotations, defaults.
* ``solver.*``: the solver class's constructor signatures along its MRO (names,
  annotations, defaults), plus the keys a class reads from ``**params``
  (``KWARGS_PARAMS``: the solver modules do not declare them), with ranges by
  parameter name (``RANGES``) and choices from the solver module's constants.

``added`` holds the dotted keys the user added with ``+key=`` / ``++key=``:
those must be declared (Hydra already refuses ``key=`` for a key that does
not exist), so ``+solver.bogus=1`` is refused instead of silently ignored.
Keys that come from a config file are trusted to exist (another config
module may add top-level keys), but their values are checked when declared.
"""

from __future__ import annotations

import difflib
import inspect
import re
import sys
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

REPO = Path(__file__).resolve().parents[1]
MIN_GRID = 8  # = problems.MIN_GRID (tests check it)
SEED_MAX = 2**32 - 1  # numpy.random.seed's range (harness.check seeds numpy with it)
# Words accepted for ``threads`` besides a positive integer: ``all`` = every core this process may use.
THREAD_WORDS: tuple[str, ...] = ("all",)
REPEATS_MAX = 1000  # repeats of one job: more is a typo, not a measurement (each repeat is a full setup + solve)
THREADS_MAX = 4096  # no machine this harness targets has more cores; more is a typo


# ------------------------------------------------------------------------------------------------
# Top level and budget: pydantic models (types, ranges, and the hint each key's error line gives)
# ------------------------------------------------------------------------------------------------

def _field(*, hint: str, **constraints):
    return Field(description=hint, **constraints)


class _Section(BaseModel):
    # extra="allow": keys added to conf/config.yaml by other modules pass; user-added ones are checked
    # against the declared keys separately (``added``).
    model_config = ConfigDict(strict=True, extra="allow")


class BudgetModel(_Section):
    max_iters: int = _field(gt=0, hint="a positive integer (e.g. budget.max_iters=10000)")
    max_seconds: float = _field(gt=0, allow_inf_nan=False, hint="a positive finite number of seconds (an "
                                "infinite budget would never stop a solver; e.g. budget.max_seconds=10)")
    target_msr: float | None = _field(default=None, ge=0, allow_inf_nan=False,
                                      hint="an MSR >= 0, or null to run to the budget (e.g. budget.target_msr=1e-10)")
    divergence_factor: float = _field(gt=1, hint="a factor > 1 over the initial MSR (e.g. "
                                                 "budget.divergence_factor=1e6)")


def _threads_hint() -> str:
    words = "".join(f" or {w}" for w in THREAD_WORDS)
    return f"an integer in 1..{THREADS_MAX}{words} (e.g. threads=1)"


class TopLevel(_Section):
    sweep_name: str = _field(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1,
                             hint="a folder name of letters, digits, _ . - (e.g. sweep_name=mine)")
    budget: BudgetModel
    repeats: int = _field(gt=0, le=REPEATS_MAX, hint=f"an integer in 1..{REPEATS_MAX} (e.g. repeats=3)")
    repeat_solve_under_s: float | None = _field(default=None, gt=0, allow_inf_nan=False,
                                                hint="a positive number of seconds, or null for no limit "
                                                     "(e.g. repeat_solve_under_s=2)")
    warmup: bool = _field(default=True, hint="true or false (e.g. warmup=false)")
    seed: int = _field(ge=0, le=SEED_MAX, hint=f"an integer in 0..{SEED_MAX} (e.g. seed=0)")
    threads: int | str = _field(hint="")  # checked by _check_threads (its words depend on THREAD_WORDS)
    verify_timing: bool = _field(hint="true or false (e.g. verify_timing=true)")
    progress: bool = _field(default=True, hint="true or false (e.g. progress=false)")
    resume: str | None = _field(default=None, min_length=1, hint="a sweep folder, or null (e.g. resume=results/x/y)")
    job_timeout_s: float | None = _field(default=None, gt=0, allow_inf_nan=False,
                                         hint="a positive number of seconds, or null for the default "
                                              "(e.g. job_timeout_s=600)")
    isolate: bool = _field(default=True, hint="true or false (e.g. isolate=false)")
    memory_check: bool = _field(default=True, hint="true or false (e.g. memory_check=false)")


def _hint(model: type[BaseModel], loc: tuple) -> str:
    m, hint = model, ""
    for part in loc:
        info = m.model_fields.get(part) if isinstance(part, str) and hasattr(m, "model_fields") else None
        if info is None:
            break
        hint = info.description or hint
        ann = info.annotation
        m = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if m is None:
            break
    return hint


# ------------------------------------------------------------------------------------------------
# Parameters declared by a callable's signature (solvers, problem generators)
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    annotation: Any = Any
    default: Any = inspect.Parameter.empty


# Keys a solver class reads from **params (the solver modules do not declare them in a signature).
KWARGS_PARAMS: dict[str, dict[str, Param]] = {
    "solvers.krylov.Krylov": {
        "ilu_drop_tol": Param(float, 1e-3), "ilu_fill_factor": Param(float, 20),
        "ilu_permc_spec": Param(str, "NATURAL"), "ilu_diag_pivot_thresh": Param(float, 0.0),
        "cycle": Param(str, "V"),
    },
    "solvers.quasi_newton.QuasiNewton": {"maxcor": Param(int, 10)},
    "solvers.direct.SparseLU": {"permc_spec": Param(str, "COLAMD")},
    "solvers.direct.FastSine": {"workers": Param(int, 1)},
    "solvers.metamizer.solver.Metamizer": {
        # hidden / variant null: the checkpoint file's own (harness.evaluate with a file)
        "checkpoint": Param(str), "hidden": Param(int | None, 10), "variant": Param(str | None, "group"),
        "gradient": Param(str, "detach"),
    },
}

# Ranges and choices by parameter name, wherever the name appears (solvers and problems).
RANGES: dict[str, dict[str, Any]] = {
    "lr": {"gt": 0}, "restart": {"ge": 1}, "iteration_cap": {"ge": 1}, "hidden": {"ge": 1},
    "maxcor": {"ge": 1}, "workers": {"ge": 1}, "ilu_drop_tol": {"ge": 0}, "ilu_fill_factor": {"ge": 1},
    "ilu_diag_pivot_thresh": {"ge": 0, "le": 1}, "good_iterations": {"ge": 0}, "seconds": {"ge": 0},
    "delay": {"ge": 0}, "n_boxes": {"ge": 0}, "seed": {"ge": 0, "le": SEED_MAX},
    "n": {"ge": MIN_GRID}, "h": {"ge": MIN_GRID}, "w": {"ge": MIN_GRID},
}
FIXED_CHOICES: dict[str, tuple[str, ...]] = {
    "gradient": ("detach", "exact"), "variant_metamizer": ("group", "batch"), "cycle": ("V", "W", "F", "AMLI"),
    "ilu_permc_spec": ("NATURAL", "MMD_ATA", "MMD_AT_PLUS_A", "COLAMD"),
    "permc_spec": ("NATURAL", "MMD_ATA", "MMD_AT_PLUS_A", "COLAMD"),
}
# A parameter whose choices are a constant of the module that defines the class or generator.
MODULE_CHOICES = {"method": "METHODS", "optimizer": "OPTIMIZERS", "preconditioner": "PRECONDITIONERS",
                  "kind": "KINDS", "variant": "HARMONIC"}
SKIP = {"self", "name", "_target_"}


def _resolve_annotation(fn, name: str, raw: Any) -> Any:
    if raw is inspect.Parameter.empty:
        return Any
    if isinstance(raw, str):  # from __future__ import annotations
        try:
            return typing.get_type_hints(fn)[name]
        except Exception:  # noqa: BLE001 - an annotation we cannot evaluate: no type check
            return Any
    return raw


def signature_params(fn) -> tuple[dict[str, Param], bool]:
    """Named parameters of ``fn`` (annotation, default) and whether it also takes **kwargs."""
    out, var_kw = {}, False
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return out, True
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in SKIP:
            out[p.name] = Param(_resolve_annotation(fn, p.name, p.annotation), p.default)
    return out, var_kw


def class_params(cls: type) -> dict[str, Param]:
    """Parameters of a class's constructor: those of each __init__ along the MRO while the
    subclass passes **params on (the first declaration of a name wins), plus KWARGS_PARAMS."""
    out: dict[str, Param] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        named, var_kw = signature_params(init)
        for k, v in named.items():
            out.setdefault(k, v)
        if not var_kw:
            break
    for klass in cls.__mro__:
        for k, v in KWARGS_PARAMS.get(f"{klass.__module__}.{klass.__qualname__}", {}).items():
            out.setdefault(k, v)
    return out


def _declared_type(p: Param) -> Any:
    """The type to check: the annotation, else the default's type (None default: anything)."""
    if p.annotation is not Any:
        return p.annotation
    if p.default is inspect.Parameter.empty or p.default is None:
        return Any
    return type(p.default)


def _choices(name: str, module_name: str, owner: str = "") -> tuple | None:
    if name == "variant" and owner.endswith("Metamizer"):
        return FIXED_CHOICES["variant_metamizer"]
    if name in FIXED_CHOICES:
        return FIXED_CHOICES[name]
    const = MODULE_CHOICES.get(name)
    module = sys.modules.get(module_name)
    values = getattr(module, const, None) if const and module else None
    return tuple(values) if isinstance(values, (dict, list, tuple, frozenset, set)) else None


def _describe(tp: Any, rng: dict[str, Any], choices: tuple | None) -> str:
    if choices:
        return "one of " + ", ".join("null" if c is None else str(c) for c in choices)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    nullable = type(None) in args
    base = next((a for a in args if a is not type(None)), tp) if args and origin is not dict else tp
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a mapping",
             list: "a list"}.get(base if isinstance(base, type) else typing.get_origin(base), "a value")
    limits = [f"{'>' if k == 'gt' else '>=' if k == 'ge' else '<='} {v:g}" for k, v in rng.items()]
    text = words + (" " + " and ".join(limits) if limits else "")
    return text + (", or null" if nullable else "")


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):  # quoted when a bare string would be unreadable in one line
        return value if value and value.isprintable() and not any(c.isspace() for c in value) else repr(value)
    return repr(value)


def _example(key: str, p: Param) -> str:
    d = p.default
    if d is inspect.Parameter.empty or isinstance(d, (dict, list)):
        return ""
    return f" (e.g. {key}={_show(d)}, the default)"


def check_params(section: str, owner: str, params: dict[str, Param], values: dict[str, Any],
                 added: Iterable[str], module_name: str) -> str | None:
    """One line for the first bad value in ``values`` (the ``section`` of the config), or None."""
    added = set(added)
    for key in sorted(added):
        if key not in params:
            known = sorted(params)
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {section}.{close[0]}? " if close else ""
            return (f"+{section}.{key}={_show(values.get(key))}: {owner} has no parameter {key!r}; {hint}"
                    f"its parameters: {', '.join(known) or 'none'}")
    for key, value in values.items():
        p = params.get(key)
        if p is None or key in SKIP:
            continue  # from a config file but not in the signature (e.g. a test's _target_ override)
        full = f"{section}.{key}"
        if key == "device":
            if not (isinstance(value, str) and re.fullmatch(r"cpu|cuda(:\d+)?", value)):
                return f"{full}={_show(value)} is not valid for {owner}: use cpu, cuda or cuda:N (e.g. {full}=cpu)"
            continue
        choices = _choices(key, module_name, owner)
        if choices is not None and value in choices:
            continue
        if key in ("h", "w") and value is None:
            continue
        tp = _declared_type(p)
        rng = RANGES.get(key, {}) if _is_number_type(tp) else {}
        if choices is not None and (isinstance(value, str) or value is None):
            return f"{full}={_show(value)} is not valid for {owner}: use {_describe(tp, rng, choices)}"
        try:
            TypeAdapter(Annotated[tp, Field(**rng)] if rng else tp).validate_python(value, strict=True)
        except ValidationError:
            return f"{full}={_show(value)} is not valid for {owner}: use {_describe(tp, rng, None)}{_example(full, p)}"
        except Exception:  # noqa: BLE001 - an annotation pydantic cannot check: skip, the class checks it
            continue
        if key == "checkpoint" and isinstance(value, str) and not value.strip():
            return f"{full}={_show(value)} is empty: give a checkpoint file (e.g. {full}=model.safetensors)"
        if key == "checkpoint" and isinstance(value, str):
            for where in (Path(value).expanduser(), REPO / value):
                if where.is_dir():
                    return (f"{full}={value} is a directory: give the checkpoint file inside it "
                            f"(e.g. {full}={Path(value) / 'model.safetensors'})")
    return None


def _is_number_type(tp: Any) -> bool:
    args = typing.get_args(tp) or (tp,)
    return any(a in (int, float) for a in args)


# ------------------------------------------------------------------------------------------------
# The whole config
# ------------------------------------------------------------------------------------------------

def top_level_error(cfg: dict[str, Any]) -> str | None:
    try:
        TopLevel.model_validate(cfg)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if isinstance(p, str))
        key = ".".join(loc)
        if err["type"] == "missing":
            return f"{key} is missing: set it (+{key}=...) or restore it in conf/config.yaml"
        value = _lookup(cfg, loc)
        return f"{key}={_show(value)} is not valid: use {_hint(TopLevel, loc)}"
    return _threads_error(cfg.get("threads"))


def _threads_error(value: Any) -> str | None:
    if value in THREAD_WORDS:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= THREADS_MAX:
        return f"threads={_show(value)} is not valid: use {_threads_hint()}"
    return None


def _lookup(cfg: dict, loc: tuple) -> Any:
    for part in loc:
        if not isinstance(cfg, dict) or part not in cfg:
            return None
        cfg = cfg[part]
    return cfg


def solver_error(solver: dict[str, Any], added: Iterable[str]) -> str | None:
    target = solver.get("_target_")
    name = solver.get("name", "solver")
    if not isinstance(target, str) or not target:
        return f"solver._target_={_show(target)} is not valid: use a solver class path (e.g. solvers.krylov.Krylov)"
    try:
        from hydra.utils import get_class

        cls = get_class(target)
    except Exception as exc:  # noqa: BLE001 - Hydra wraps import errors in several types
        cause = exc.__cause__ or exc
        return f"solver._target_={target}: cannot import it ({type(cause).__name__}: {str(cause).splitlines()[0]})"
    values = {k: v for k, v in solver.items() if k not in SKIP}
    return check_params("solver", name, class_params(cls), values, added, cls.__module__)


def problem_error(problem: dict[str, Any], added: Iterable[str]) -> str | None:
    from problems import GENERATORS, make_problem

    name = problem.get("name")
    fn = GENERATORS.get(name)
    if fn is None:
        return f"problem.name={_show(name)} is not valid: use one of {', '.join(sorted(GENERATORS))}"
    params, _ = signature_params(fn)
    params.pop("h", None), params.pop("w", None)
    common, _ = signature_params(make_problem)
    params.update({k: Param(int | None, v.default) for k, v in common.items()})
    params["n"] = Param(int | None, common["n"].default)
    values = {k: v for k, v in problem.items() if k != "name"}
    line = check_params("problem", name, params, values, added, fn.__module__)
    if line is None and values.get("n") is None and None in (values.get("h"), values.get("w")):
        return "problem.n=null needs problem.h and problem.w (e.g. problem.n=64)"
    return line


def config_error(cfg: Any, added: Iterable[str] = ()) -> str | None:
    """The first bad value of a composed config as one line, or None. ``cfg``: DictConfig or dict."""
    if not isinstance(cfg, dict):
        from omegaconf import OmegaConf

        try:  # the job's keys only: hydra.* holds per-job values (job.num) that are not known yet
            cfg = {str(k): OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
                   for k in cfg if k != "hydra"}
        except Exception as exc:  # noqa: BLE001 - an interpolation that does not resolve
            return _unresolved(exc)
    cfg = {k: v for k, v in cfg.items() if k != "hydra"}
    added = [a.lstrip("+") for a in added]
    top = {a for a in added if "." not in a}
    declared_top = set(TopLevel.model_fields) | _base_keys() | {"sweep", "check"}
    for key in sorted(top - declared_top):
        close = difflib.get_close_matches(key, sorted(declared_top), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"+{key}: no such setting; {hint}valid: {', '.join(sorted(declared_top - {'check', 'hydra', 'sweep'}))}"
    for key in sorted(a for a in added if a.startswith("budget.")):
        if key.split(".", 1)[1] not in BudgetModel.model_fields:
            return f"+{key}: no such budget setting; valid: {', '.join(BudgetModel.model_fields)}"
    return (top_level_error(cfg)
            or problem_error(cfg.get("problem") or {}, [a.split(".", 1)[1] for a in added if a.startswith("problem.")])
            or solver_error(cfg.get("solver") or {}, [a.split(".", 1)[1] for a in added if a.startswith("solver.")]))


def _unresolved(exc: Exception) -> str:
    """An interpolation that does not resolve, as one line naming the key, what it refers to and the fix."""
    key = getattr(exc, "full_key", None) or "a key"
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    what = first.split(" full_key:", 1)[0].rstrip(".")
    return f"{key}: its value does not resolve ({what}): give a plain value, or ${{...}} naming a key of the config"


_BASE: dict[str, set[str]] = {}


def _base_keys() -> set[str]:
    """Top-level keys of conf/config.yaml (other modules may add settings there)."""
    if "keys" not in _BASE:
        from omegaconf import OmegaConf

        try:
            _BASE["keys"] = {str(k) for k in OmegaConf.load(REPO / "conf" / "config.yaml") if k != "defaults"}
        except Exception:  # noqa: BLE001
            _BASE["keys"] = set()
    return _BASE["keys"]



__all__ = ["REPEATS_MAX", "THREADS_MAX", "THREAD_WORDS", "BudgetModel", "TopLevel", "class_params", "config_error",
           "problem_error", "solver_error", "top_level_error"]
