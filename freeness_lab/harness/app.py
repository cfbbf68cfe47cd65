"""The ``freeness-lab`` command (and ``python -m freeness_lab``): a Hydra app over ``conf/``.

Before Hydra creates any folder, :func:`main` composes the config of every job the command
line asks for (each combination of a ``-m`` sweep) through the compose API and validates it
(:func:`~freeness_lab.harness.config.validate_config`); any error -- a bad value, an unknown
key (``+misspelled=1`` included), an unknown group option, an override that does not parse --
is printed as ONE line naming the field and its allowed values, and the command exits with
status 2, leaving nothing behind. Then the Hydra app runs: the run folder is
``<paths.results>/<experiment>/<hash of the config>`` (so re-running the same command
resumes it; ``paths.results`` is ``results`` unless ``conf/paths`` or the command line says
otherwise), see ``conf/config.yaml``; a multirun's folder is
``<paths.results>/<experiment>/multirun-<hash of its overrides>`` with one
``<hash of the config>`` subfolder per job.

Exit status: 0; 2 (bad config); 1 when ``experiment.fail_on_disagreement`` is set and a check
fails (single runs and the sequential launcher), or on an OS fault (read-only folder, full
disk: one line naming it) or any other error (one line; the traceback goes to
``error.log`` in the run folder); 130 when interrupted (Ctrl-C or SIGTERM: one line, finished cells
kept for the re-run).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import MissingConfigException
from omegaconf import DictConfig, OmegaConf

import freeness_lab
from freeness_lab.harness.config import RUNTIME_FIELDS, validate_config
from freeness_lab.harness.experiment import run_experiment
from freeness_lab.harness.figures import app_arguments
from freeness_lab.harness.locking import RunFolderBusy
from freeness_lab.harness.storage import CellDamaged
from freeness_lab.spec import SpecError

PROG = "freeness-lab"
CONFIG_NAME = "config"
#: launchers that run jobs side by side on this machine: the run itself then uses n_jobs = 1
_LOCAL_PARALLEL_LAUNCHERS = ("JoblibLauncher", "LocalLauncher")
_FAILED_CHECKS: list[int] = []
#: where a run that failed on an unexpected exception leaves its traceback
ERROR_LOG = "error.log"
#: an activation with an argument, e.g. leaky_relu(0.2), not already quoted: Hydra's override
#: grammar reads parentheses as a function call, so the command line would not parse
_ACTIVATION_CALL = re.compile(r"(?<!['\"\w])(leaky_relu\([^()'\"]*\))(?!['\"])")


def config_dir() -> Path:
    """The config tree: ``freeness_lab/conf`` in an installed wheel, else the repo's ``conf/``."""
    pkg = Path(freeness_lab.__file__).resolve().parent
    for candidate in (pkg / "conf", pkg.parent / "conf"):
        if (candidate / f"{CONFIG_NAME}.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no Hydra config tree (conf/{CONFIG_NAME}.yaml) next to {pkg}")


def _hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _run_id(*, _root_: DictConfig) -> str:
    """Resolver ``${fl_run_id:}``: hash of the config without hydra and runtime-only fields."""
    keys = [k for k in _root_ if k != "hydra" and k not in RUNTIME_FIELDS]
    content = OmegaConf.to_container(OmegaConf.masked_copy(_root_, keys), resolve=True)
    if content.get("network", {}).get("q_star", 0) is None:  # as RunConfig.identity()
        del content["network"]["q_star"]
    # unset width ratios leave the hash of a square run as it was before they existed
    if content.get("network", {}).get("width_ratios", 0) is None:
        del content["network"]["width_ratios"]
    axes = content.get("sweep", {}).get("axes")
    if isinstance(axes, dict) and axes.get("width_ratios", 0) is None:
        del axes["width_ratios"]
    return _hash(content)


def register_resolvers() -> None:
    """Register the ``fl_run_id`` resolver used by ``conf/config.yaml``."""
    OmegaConf.register_new_resolver("fl_run_id", _run_id, replace=True)


def sweep_dir_override(overrides: list[str]) -> str:
    """``hydra.sweep.dir`` of a multirun: a hash of its overrides, so that re-running the same
    command resumes the same sweep (each job in its ``${fl_run_id:}`` subfolder)."""
    return (f"hydra.sweep.dir=${{paths.results}}/${{experiment.name}}/multirun-"
            f"{_hash(sorted(overrides))}")


def quote_activation_arguments(overrides: list[str]) -> list[str]:
    """Quote ``leaky_relu(s)`` in override values, so that ``network.activation=leaky_relu(0.2)``
    works as written (Hydra alone needs ``'leaky_relu(0.2)'``)."""
    out = []
    for line in overrides:
        key, eq, value = line.partition("=")
        out.append(key + eq + _ACTIVATION_CALL.sub(r"'\1'", value) if eq else line)
    return out


def _check_group_options(overrides: list[str]) -> None:
    """A config-group override must name one of the group's options (``network=3`` is not)."""
    groups = {p.relative_to(config_dir()).as_posix() for p in config_dir().rglob("*")
              if p.is_dir()}
    for line in overrides:
        key, eq, value = line.partition("=")
        key = key.lstrip("+~")
        # Hydra's own groups (hydra/...) have built-in options; sweep functions are Hydra's
        if (not eq or key not in groups or key.startswith("hydra")
                or not re.fullmatch(r"[\w.\-]+(,[\w.\-]+)*", value.strip())):
            continue
        options = sorted(p.stem for p in (config_dir() / key).glob("*.yaml"))
        for option in (v.strip() for v in value.split(",")):
            if option not in options:
                raise SpecError(key, f"unknown option {option!r}; allowed: {', '.join(options)}")


def _first_line(err: BaseException) -> str:
    msg = getattr(err, "msg", None) or str(err)
    return next((ln.strip() for ln in str(msg).splitlines() if ln.strip()), type(err).__name__)


def describe_error(err: BaseException) -> str:
    """One line naming the field of a configuration error and its allowed values."""
    if isinstance(err, SpecError):
        return str(err)
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, option = str(err.missing_cfg_file).rpartition("/")
        if err.options:
            return (f"{group or 'config'}: unknown option {option!r}; allowed: "
                    f"{', '.join(sorted(err.options))}")
    chain, e = [], err
    while e is not None:
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:
        if str(e).startswith("Ambiguous value for argument"):
            key = str(e).split("'")[1].split("=")[0] if "'" in str(e) else "override"
            return f"{key}: several values given; add -m (--multirun) to sweep over them"
        full_key = getattr(e, "full_key", None)
        if full_key:
            if "not in struct" in str(e) or "not found" in str(e).lower():
                try:
                    validate_config(_unknown_key_probe(str(full_key)))
                except SpecError as spec_err:
                    return str(spec_err)
            return f"{full_key}: {_first_line(e)}"
    return "; ".join(dict.fromkeys(_first_line(e) for e in chain[:2]))


def _unknown_key_probe(full_key: str) -> dict[str, Any]:
    """A config holding only ``full_key``, for :func:`validate_config` to name what is allowed."""
    node: dict[str, Any] = {}
    cursor = node
    parts = full_key.split(".")
    for p in parts[:-1]:
        cursor[p] = {}
        cursor = cursor[p]
    cursor[parts[-1]] = [0]
    return node


def _job_overrides(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The override list of every job the command line describes (sweeps expanded)."""
    parser, parsed = OverridesParser.create(), []
    for line in overrides:
        try:
            parsed += parser.parse_overrides([line])
        except Exception as err:
            field = line.split("=", 1)[0].lstrip("+~") or line
            raise SpecError(field, f"cannot parse override {line!r}: {_first_line(err)}") from None
    lists = []
    for ov in parsed:
        key = ov.get_key_element()
        if multirun and ov.is_sweep_override():
            lists.append([f"{key}={v}" for v in ov.sweep_string_iterator()])
        else:
            lists.append([ov.input_line])
    return [list(job) for job in itertools.product(*lists)]


def prevalidate(overrides: list[str], *, multirun: bool = False,
                config_name: str = CONFIG_NAME) -> str | None:
    """Compose and validate every job; return None, or one line describing the first error."""
    from hydra import compose, initialize_config_dir

    register_resolvers()
    overrides = quote_activation_arguments(overrides)
    try:
        _check_group_options(overrides)
        jobs = _job_overrides(overrides, multirun)
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            for job in jobs:
                validate_config(compose(config_name=config_name, overrides=job))
    except Exception as err:  # every failure becomes one line; nothing has been written
        return describe_error(err)
    return None


def describe_os_error(err: OSError) -> str:
    """One line for an OS fault (read-only folder, full disk, ...): what and where."""
    what = err.strerror or str(err) or type(err).__name__
    where = f": {err.filename}" if err.filename else ""
    return f"{what}{where}"


def _uses_local_parallel_launcher() -> bool:
    try:
        target = str(HydraConfig.get().launcher.get("_target_", ""))
    except ValueError:
        return False
    return target.endswith(_LOCAL_PARALLEL_LAUNCHERS)


def _task(cfg: DictConfig) -> None:
    """The Hydra task: validate, run the experiment in Hydra's output folder, report."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        run = validate_config(cfg)
    except SpecError as err:  # reached only when pre-validation was skipped
        print(f"{PROG}: error: {err}", file=sys.stderr)
        if not any(p.suffix == ".parquet" for p in out_dir.rglob("*")):
            shutil.rmtree(out_dir, ignore_errors=True)
        raise SystemExit(2) from None
    asked = cfg.get("n_jobs", run.n_jobs)
    if isinstance(asked, int) and asked > run.n_jobs:
        print(f"{PROG}: n_jobs={asked} capped at the {run.n_jobs} available cores")
    if run.n_jobs != 1 and _uses_local_parallel_launcher():
        run = replace(run, n_jobs=1)
    try:
        result = run_experiment(run, out_dir,
                                resolved_config=OmegaConf.to_container(cfg, resolve=True))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished cells are kept in {out_dir}: re-run the same "
              f"command to resume", file=sys.stderr)
        raise SystemExit(130) from None
    except OSError as err:
        print(f"{PROG}: error: {describe_os_error(err)}; finished cells are kept in "
              f"{out_dir}: re-run the same command to resume", file=sys.stderr)
        raise SystemExit(1) from None
    except (RunFolderBusy, CellDamaged) as err:  # another run's folder / changed under us
        print(f"{PROG}: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as err:  # a bug: one line here, the traceback in the run folder
        log = out_dir / ERROR_LOG
        log.write_text(traceback.format_exc())
        print(f"{PROG}: error: {type(err).__name__}: {_first_line(err)} (traceback in {log}; "
              f"finished cells are kept)", file=sys.stderr)
        raise SystemExit(1) from None
    s = result.stats
    print(f"{PROG}: cells {s.total} (computed {s.computed}, reused {s.reused}) -> {out_dir}")
    if not s.complete:
        print(f"{PROG}: stopped after max_new_cells={run.max_new_cells}; re-run the same "
              f"command to continue")
        return
    print(f"{PROG}: summary {result.summary} ({result.failed_checks} failing checks)")
    if run.experiment.fail_on_disagreement and result.failed_checks:
        _FAILED_CHECKS.append(result.failed_checks)


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``freeness-lab``; ``argv`` defaults to ``sys.argv[1:]``."""
    from hydra._internal.utils import get_args_parser

    argv = quote_activation_arguments(list(sys.argv[1:] if argv is None else argv))
    args, _ = get_args_parser().parse_known_args(argv)
    informational = (args.help or args.hydra_help or args.cfg or args.info
                     or args.shell_completion or args.config_dir)
    if not informational:
        error = prevalidate(args.overrides, multirun=args.multirun,
                            config_name=args.config_name or CONFIG_NAME)
        if error is not None:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return 2
    register_resolvers()
    if args.multirun and not any(o.lstrip("+").startswith("hydra.sweep.dir=")
                                 for o in args.overrides):
        argv.append(sweep_dir_override(args.overrides))
    app = hydra.main(config_path=str(config_dir()), config_name=CONFIG_NAME,
                     version_base="1.3")(_task)
    saved, sys.argv = sys.argv, [PROG, *argv]
    try:
        app()
    except KeyboardInterrupt:  # outside a job (e.g. while Hydra sets it up)
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        print(f"{PROG}: error: {describe_os_error(err)}", file=sys.stderr)
        return 1
    finally:
        sys.argv = saved
    return 1 if _FAILED_CHECKS else 0


def figure_main(preset: str, argv: list[str] | None = None) -> int:
    """Entry point of a figure alias (``experiments/<fig>/run.py``): ``size=small|full`` picks
    ``<preset>_small`` or ``<preset>`` (:func:`~freeness_lab.harness.figures.app_arguments`),
    every other argument goes to :func:`main`; exit status 2 for a bad ``size``."""
    try:
        arguments = app_arguments(preset, list(sys.argv[1:] if argv is None else argv))
    except ValueError as err:
        print(f"run.py: error: {err}", file=sys.stderr)
        return 2
    return main(arguments)
