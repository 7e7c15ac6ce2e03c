"""The command's overrides, checked before Hydra starts: one line for the first mistake, nothing written.
Over 300 lines: Hydra's override grammar (sweeps, globs, intervals, deletions), the results folders and the
composition of every job's config are one check that must see the whole command at once.

``check_arguments``: the grammar, group names (``glob()`` expanded over a group's configs),
sweep syntax the basic sweeper cannot run (``interval()``), and the results folders
(writable, and subfolder settings that stay inside their folder). ``check_values``:
every value of every job the command will run, each composed config through
``harness.validate`` (``job_variants`` covers every value of every swept key without the
full product).
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "conf"
MIN_GRID = 8  # = problems.MIN_GRID (not imported: a bad command line fails before the heavy imports)
GROUPS = ("solver", "problem", "sweep")
INFO_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc",
              "--version")
DIR_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "resume")
SUBDIR_KEYS = ("hydra.sweep.subdir", "hydra.output_subdir")  # paths inside a folder: never outside it


def choices(group: str, extra: list[Path] = ()) -> list[str]:
    """The configs of ``group`` (e.g. solver) in conf/ and in the ``extra`` config folders."""
    return sorted({p.stem for folder in (CONF, *extra) for p in (Path(folder) / group).glob("*.yaml")})


def search_dirs(argv: list[str]) -> list[Path] | None:
    """Config folders added with ``hydra.searchpath=[file://DIR,...]`` (a solver kept outside the
    repository), or None when one of them is not a folder (``pkg://``): its configs cannot be listed."""
    dirs: list[Path] = []
    for arg in argv:
        if arg.split("=", 1)[0].lstrip("+~") != "hydra.searchpath":
            continue
        override, error = _parse(arg)
        value = override.value() if not error else None
        for entry in value if isinstance(value, list) else []:
            if not str(entry).startswith("file://"):
                return None
            dirs.append(Path(str(entry)[len("file://"):]))
    return dirs


def _parse(arg: str):
    """The Hydra override for ``arg``, or a one-line error."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides([arg])[0], None
    except HydraException as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        detail = detail.split(" expecting ", 1)[0]  # Hydra's list of every token it could take: noise here
        return None, (f"malformed override {arg!r} ({detail}): use key=value, or key=a,b,c to sweep "
                      f"(e.g. problem.n=64,128); see python -m harness.run --help")


def _glob(override):
    """The ``glob()`` of a sweep override, or None."""
    from hydra.core.override_parser.types import Glob

    value = override.value() if override.is_sweep_override() else None
    return value if isinstance(value, Glob) else None


def _values(override, extra: list[Path] = ()) -> list[str] | None:
    """The string value(s) of an override (every value of a discrete sweep, the configs a ``glob()`` picks);
    None when not listable."""
    if override.is_delete():
        return None
    if (pattern := _glob(override)) is not None:
        return pattern.filter(choices(override.key_or_group.lstrip("+~"), extra))
    if override.is_sweep_override():
        return list(override.sweep_string_iterator()) if override.is_discrete_sweep() else None
    return [override.get_value_element_as_str()]


def _unwritable(key: str, value: str) -> str | None:
    """Why results cannot be written under ``value`` (the part before any ${...}), or None."""
    literal = value.split("${", 1)[0] or "."
    target = Path(literal).expanduser()
    target = target if target.is_absolute() else Path.cwd() / target
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if key == "resume":
        if target.is_file():
            return f"resume={value} is a file, not a sweep folder: give the folder a sweep wrote (results/<sweep>/<t>)"
        if not target.is_dir():
            return f"resume={value}: no such sweep folder (give the folder a sweep wrote, e.g. results/<sweep>/<stamp>)"
        probe = target
    if not probe.is_dir():
        return f"{key}={value}: cannot write results there, {probe} is a file, not a folder: choose another folder"
    try:  # os.access says yes to root everywhere; creating a folder is the real test
        Path(tempfile.mkdtemp(prefix=".harness-probe-", dir=probe)).rmdir()
    except OSError as exc:
        return f"{key}={value}: cannot write results there ({probe}: {exc.strerror or exc}): choose another folder"
    return None


def check_arguments(argv: list[str]) -> str | None:
    """One line describing the first bad command-line value, or None."""
    seen_dirs = set()
    extra = search_dirs(argv)
    info = any(a in INFO_FLAGS or a.startswith("--cfg") for a in argv)  # Hydra only prints: nothing runs
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue  # Hydra flags (--help, -m, --cfg job); Hydra reports its own
        override, error = _parse(arg)
        if error:
            return error
        key = override.key_or_group.lstrip("+~")
        if override.is_interval_sweep() and not info:
            return (f"{arg}: interval() needs a sweeper that samples (e.g. Optuna's); the basic sweeper runs a list "
                    f"or a range: use e.g. {key}=8,16 or {key}=range(8,17,4)")
        if _glob(override) is not None and key not in GROUPS:
            return (f"{arg}: glob() picks configs of a group ({', '.join(GROUPS)}), not values of {key}: list them "
                    f"(e.g. {key}=16,20) or use range()")
        values = _values(override, extra or [])
        if values is None:
            continue
        if _glob(override) is not None and not values:
            return f"{arg} matches no {key}; valid: {', '.join(choices(key, extra or []))}"
        if key in ("solver", "problem", "sweep") and extra is not None:
            valid = choices(key, extra)
            for v in values:
                if v not in valid:
                    what = f"{key}= needs a value" if v == "" else f"unknown {key} {v!r}"
                    return f"{what}; valid: {', '.join(valid)}"
        elif key in SUBDIR_KEYS:
            reason = _leaves_folder(key, arg.split("=", 1)[1])
            if reason:
                return reason
        elif key in DIR_KEYS:
            if not values[0]:
                return f"{key}= needs a folder (e.g. {key}=results/mine)"
            if key == "resume" and values[0] in ("null", "None"):
                continue
            seen_dirs.add(key)
            reason = _unwritable(key, values[0])
            if reason:
                return reason
    if not seen_dirs & {"hydra.run.dir", "hydra.sweep.dir", "resume"}:
        return _unwritable("results folder", "results")
    return None


def _leaves_folder(key: str, value: str) -> str | None:
    """Why a subfolder setting would write outside its folder (absolute, or climbing with ..), or None."""
    if value in ("null", "None", ""):
        return None
    if value.startswith(("/", "~")) or ".." in Path(value.replace("\\", "/")).parts:
        example = "hydra.sweep.subdir=${hydra.job.num}" if key == "hydra.sweep.subdir" else f"{key}=.hydra"
        return f"{key}={value} leaves its folder: give a path inside it, without .. (e.g. {example})"
    return None


def _hydra_error_line(exc: Exception) -> str:
    """Hydra's multi-line composition errors as one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    if any(ln.startswith("Available options") for ln in lines):
        i = next(i for i, ln in enumerate(lines) if ln.startswith("Available options"))
        options = [ln for ln in lines[i + 1:] if not ln.startswith(("Config search path", "provider="))]
        return f"{lines[0]}; available: {', '.join(options)}"
    if lines[0].startswith("Could not override") and len(lines) > 1:  # Hydra: the key is not in the config
        key = lines[0].split("'")[1] if lines[0].count("'") >= 2 else ""
        if key.startswith("solver."):
            return (f"{lines[0].rstrip('.')}: the solver's config has no such key (in a sweep, every solver "
                    f"must have it). {lines[1]} only if the solver takes that parameter")
        return f"{lines[0].rstrip('.')}: no such key in the config. {lines[1]} only if it is a real setting"
    return lines[0]


def _typed_values(override, extra: list[Path] = ()) -> list:
    """The typed value(s) of an override: every value of a discrete sweep, one otherwise."""
    from hydra.core.override_parser.types import Transformer

    if (pattern := _glob(override)) is not None:
        return pattern.filter(choices(override.key_or_group.lstrip("+~"), extra))
    if override.is_sweep_override():
        return list(override.sweep_iterator(transformer=Transformer.identity)) if override.is_discrete_sweep() else []
    return [override.value()]


def _as_override(prefix: str, key: str, value) -> str:
    """An override string that Hydra parses back to ``value``."""
    return f"{prefix}{key}={_hydra_text(value)}"


def _hydra_text(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_text(v)}" for k, v in value.items()) + "}"
    text = str(value)
    plain = text and all(c.isalnum() or c in "_-./:" for c in text) and text.lower() not in (
        "null", "true", "false", "inf", "nan", "-inf")
    try:
        float(text)
        plain = False  # "5" given as a string stays a string
    except ValueError:
        pass
    return text if plain else _quoted(text)


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def job_variants(argv: list[str], sweep_params: dict[str, str] | None = None) -> list[list[str]]:
    """Override lists that cover every value of every swept key of the command (plus those of
    ``sweep_params``, a sweep file's ``hydra.sweeper.params``), without the full product: keys that
    depend on each other (a solver and its ``solver.*`` parameters; a problem and ``problem.*``)
    vary together, other keys one at a time. Each list composes to one job's config."""
    entries: dict[str, tuple[str, list]] = {}  # key -> (prefix, values), in command order
    extra = search_dirs(argv) or []
    for arg in [f"{k}={v}" for k, v in (sweep_params or {}).items()] + [
            a for a in argv if not a.startswith("-") and ("=" in a or a.startswith("~"))]:
        override, error = _parse(arg)
        if override is None:
            continue
        if override.is_delete():
            entries[override.get_key_element()] = ("", [arg])
            continue
        values = _typed_values(override, extra)
        if not values:
            continue  # a range or interval sweep of floats: Hydra's sweeper refuses it itself
        key = override.key_or_group
        prefix = override.get_key_element()[: -len(key)] if override.get_key_element().endswith(key) else ""
        entries[key] = (prefix, values)

    def as_args(choice: dict[str, object]) -> list[str]:
        out = []
        for key, (prefix, values) in entries.items():
            if len(values) == 1 and isinstance(values[0], str) and values[0].startswith("~"):
                out.append(values[0])
            else:
                out.append(_as_override(prefix, key, choice.get(key, values[0])))
        return out

    swept = {k: v for k, (_, v) in entries.items() if len(v) > 1}
    variants = [as_args({})]
    for family in ("solver", "problem"):
        keys = [k for k in swept if k == family or k.startswith(family + ".")]
        for combo in itertools.islice(itertools.product(*(swept[k] for k in keys)), 1, 2000):
            variants.append(as_args(dict(zip(keys, combo, strict=True))))
    for key in swept:
        if key.split(".", 1)[0] not in ("solver", "problem"):
            variants += [as_args({key: v}) for v in swept[key][1:]]
    return variants


def added_keys(overrides: list[str]) -> list[str]:
    """Dotted keys added with ``+key=`` or ``++key=`` (those must be declared settings)."""
    return [o.split("=", 1)[0].lstrip("+") for o in overrides if o.startswith("+") and "=" in o]


def sweeper_params(argv: list[str]) -> dict[str, str]:
    """``hydra.sweeper.params`` of the sweep file the command names (``+sweep=NAME``), if any."""
    from hydra import compose

    first = job_variants([a for a in argv if a.split("=", 1)[0].lstrip("+~").split(".")[0] in ("sweep", "hydra")
                          or a.split("=", 1)[0].lstrip("+~").startswith("hydra/")])[0]
    if not first:
        return {}  # conf/config.yaml itself sweeps nothing
    hc = compose("config", overrides=first, return_hydra_config=True)
    return {str(k): str(v) for k, v in (hc.hydra.sweeper.get("params") or {}).items()}


def check_values(argv: list[str], max_groups: int = 200) -> str | None:
    """Compose every job's config as Hydra will and check every value (``harness.validate``); one line
    for the first problem, or None."""
    return _check_values(argv, max_groups)[0]


def _check_values(argv: list[str], max_groups: int = 200):
    """(one line or None, the first job's config with its hydra section, for ``plan_output``)."""
    from hydra import compose, initialize_config_dir

    from harness.validate import config_error

    first = None
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF), job_name="run"):
            params = sweeper_params(argv)
            for i, overrides in enumerate(job_variants(argv, params)):
                if i >= max_groups:
                    break
                cfg = compose("config", overrides=overrides, return_hydra_config=i == 0)
                first = cfg if i == 0 else first
                line = config_error(cfg, added_keys(overrides))
                if line:
                    return line, first
    except Exception as exc:  # noqa: BLE001 - whatever Hydra says, as one line
        return _hydra_error_line(exc), first
    return None, first
