"""``kb site``: build the review site (mkdocs-material) into ``build/site/``, or serve it.

mkdocs is driven programmatically: the workspace's ``mkdocs.yml`` is loaded, kb's hooks
(:mod:`pipeline.stages.site.hooks`) are registered on it, and ``mkdocs.commands.build`` renders
atoms, transcripts and index pages. The build goes to a temporary folder that replaces
``build/site`` only when it succeeded, so a failed build leaves the previous site intact.
mkdocs' log messages are passed to the Reporter (stages never print).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.config import Settings
from pipeline.errors import ConfigError, KbError, MissingDependencyError, NotFoundError
from pipeline.findings import Finding
from pipeline.reporting import Reporter
from pipeline.workspace import Workspace, sha256_file, sha256_json

FRESHNESS_KEY = "site"
#: Files bigger than this are fingerprinted by size and mtime instead of content (recordings).
_HASH_LIMIT = 8 << 20


@dataclass
class SiteReport:
    site_dir: Path
    atoms: int = 0
    interviews: int = 0
    pages: int = 0
    seconds: float = 0.0
    skipped: bool = False
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.skipped:
            return f"{self.site_dir} is fresh (nothing changed since the last build)"
        return (
            f"built {self.site_dir} ({self.atoms} atoms, {self.interviews} interviews, "
            f"{self.pages} generated pages) in {self.seconds:.1f} s; open {self.site_dir / 'index.html'}"
        )


def _require_mkdocs() -> None:
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
    except ImportError:
        raise MissingDependencyError("mkdocs-material", "site", "Building the review site") from None


class _ToReporter(logging.Handler):
    """mkdocs' warnings (and errors) go to the Reporter; its chatter is dropped."""

    def __init__(self, reporter: Reporter, sink: list[str]):
        super().__init__(logging.WARNING)
        self.reporter = reporter
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.sink.append(message)
        self.reporter.warn(f"site: {message}")


class _ListHandler(logging.Handler):
    """Collects mkdocs' config errors: it logs them, then raises a bare Abort."""

    def __init__(self, sink: list[str]):
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


@contextmanager
def _mkdocs_logs(reporter: Reporter, sink: list[str]) -> Iterator[None]:
    logger = logging.getLogger("mkdocs")
    handler = _ToReporter(reporter, sink)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def load_config(
    settings: Settings,
    workspace: Workspace,
    *,
    strict: bool = True,
    findings: Sequence[Finding] | None = None,
    **overrides: Any,
) -> tuple[Any, Any]:
    """The workspace's mkdocs config with kb's hooks registered: ``(config, hooks)``."""
    _require_mkdocs()
    from mkdocs.config.base import load_config as mk_load_config
    from mkdocs.exceptions import Abort, ConfigurationError

    from pipeline.stages.site.hooks import SiteHooks

    config_file = workspace.mkdocs_yml
    if not config_file.is_file():
        raise NotFoundError(
            f"{config_file} does not exist, so there is no site to build.",
            "Create a workspace with 'kb init DIR' (it writes mkdocs.yml and site/index.md).",
        )
    errors: list[str] = []
    handler = _ListHandler(errors)
    mk_logger = logging.getLogger("mkdocs")
    mk_logger.addHandler(handler)
    try:
        config = mk_load_config(str(config_file), strict=strict, **overrides)
    except (ConfigurationError, Abort) as exc:  # a bad value is logged, then Abort is raised
        detail = "; ".join(errors) if isinstance(exc, Abort) and errors else str(exc)
        raise ConfigError(
            f"{config_file}: {detail}",
            "Fix mkdocs.yml or the --dev-addr given (see the mkdocs.yml 'kb init' writes; docs_dir must exist, "
            "theme must be material).",
        ) from None
    finally:
        mk_logger.removeHandler(handler)
    hooks = None
    for name, module in dict(config.hooks or {}).items():  # mkdocs.yml lists kb's hooks.py itself
        default = getattr(module, "_default", None)
        if str(name).endswith("hooks.py") and type(default).__name__ == "SiteHooks":
            default.workspace, default.settings = workspace, settings
            default.findings, default.strict = findings, strict
            hooks = default
    if hooks is None:
        hooks = SiteHooks(workspace, settings, findings, strict=strict)
        config.plugins["kb-site"] = hooks
    return config, hooks


def site_dir_of(workspace: Workspace) -> Path:
    """Where the site is built: mkdocs.yml's ``site_dir`` (default ``build/site``)."""
    import yaml

    try:
        data = yaml.load(workspace.mkdocs_yml.read_text(encoding="utf-8"), Loader=_lenient_loader()) or {}
    except (OSError, yaml.YAMLError):
        data = {}
    site_dir = data.get("site_dir")
    return (workspace.root / str(site_dir) if site_dir else workspace.build_dir / "site").resolve()


def _lenient_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # mkdocs.yml may use tags such as !ENV or !!python/name: read them as plain values
    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    return Loader


def _inputs(settings: Settings, workspace: Workspace, findings: Sequence[Finding] | None, strict: bool) -> dict:
    """What a build depends on: workspace files, settings, findings and kb's own site code."""
    files: dict[str, str] = {}
    folders = [workspace.atoms_dir, workspace.interviews_dir, workspace.site_dir]
    singles = [workspace.mkdocs_yml, workspace.kb_yaml]
    for folder in folders:
        if folder.is_dir():
            singles += [p for p in folder.rglob("*") if p.is_file()]
    for path in sorted(set(singles)):
        if not path.is_file():
            continue
        stat = path.stat()
        key = workspace.relative(path)
        files[key] = sha256_file(path) if stat.st_size <= _HASH_LIMIT else f"{stat.st_size}:{stat.st_mtime_ns}"
    from pipeline.stages.site import hooks

    code = [*sorted(Path(__file__).parent.glob("*.py")), *sorted(hooks.assets_dir().rglob("*.*"))]
    rows = None
    if findings is not None:
        rows = [[str(getattr(f, k)) for k in ("severity", "path", "line", "rule", "message")] for f in findings]
    return {
        "files": sha256_json(files),
        "settings": settings.site.model_dump(mode="json"),
        "findings": sha256_json(rows),
        "strict": strict,
        "kb": __version__,
        "code": sha256_json([sha256_file(p) for p in code if p.is_file()]),
    }


def run(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    serve: bool = False,
    strict: bool = True,
    findings: Sequence[Finding] | None = None,
    dev_addr: str | None = None,
) -> SiteReport:
    """Build the site (or serve it with live reload until interrupted). ``findings`` come from kb check."""
    if serve:
        return _serve(settings, workspace, reporter, strict=strict, findings=findings, dev_addr=dev_addr)
    _require_mkdocs()
    from mkdocs.commands.build import build
    from mkdocs.exceptions import Abort

    inputs = _inputs(settings, workspace, findings, strict)
    warnings: list[str] = []
    started = time.monotonic()
    with _mkdocs_logs(reporter, warnings):
        config, hooks = load_config(settings, workspace, strict=strict, findings=findings)
        final = Path(config.site_dir)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
        config.site_dir = str(tmp)
        try:
            try:
                build(config)
            except Abort as exc:
                raise _strict_error(exc, warnings) from None
            _swap(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    workspace.freshness("site").record(FRESHNESS_KEY, inputs)
    counts = hooks.summary()
    return SiteReport(
        site_dir=_display(workspace, final),
        atoms=counts["atoms"],
        interviews=counts["interviews"],
        pages=counts["pages"],
        seconds=time.monotonic() - started,
        warnings=warnings,
    )


def _strict_error(exc: Any, warnings: list[str]) -> KbError:
    first = f" (first: {warnings[0]})" if warnings else ""
    return KbError(
        f"The site build stopped in strict mode: {exc.message}{first}",
        "Fix what the warnings name, or build anyway with 'kb site --no-strict'.",
    )


def _display(workspace: Workspace, path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _swap(new: Path, final: Path) -> None:
    """Put the new build in place; the old one is removed only once the new one is there."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}-old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run_all(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    force: bool = False,
    findings: Sequence[Finding] | None = None,
) -> SiteReport:
    """The ``kb run`` step: build unless nothing changed since the last build.

    Not strict: a broken atom must not stop the pipeline before ``export``; ``kb check`` already
    reports it, the warnings are passed on, and the coverage page lists unreadable files.
    """
    final = site_dir_of(workspace)
    if not force and (final / "index.html").is_file():
        inputs = _inputs(settings, workspace, findings, False)
        if workspace.freshness("site").is_fresh(FRESHNESS_KEY, inputs):
            reporter.skip(f"site: {workspace.relative(final)} is fresh")
            return SiteReport(site_dir=_display(workspace, final), skipped=True)
    return run(settings, workspace, reporter, strict=False, findings=findings)


def _serve(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    *,
    strict: bool,
    findings: Sequence[Finding] | None,
    dev_addr: str | None,
) -> SiteReport:
    """mkdocs' live-reload server over a temporary build; rebuilds when atoms, interviews or site/ change."""
    _require_mkdocs()
    from mkdocs.commands.build import build
    from mkdocs.exceptions import Abort
    from mkdocs.livereload import LiveReloadServer

    warnings: list[str] = []
    site_dir = tempfile.mkdtemp(prefix="kb-site-")
    hooks_box: dict[str, Any] = {}

    def get_config() -> Any:
        config, hooks = load_config(
            settings, workspace, strict=strict, findings=findings, site_dir=site_dir, dev_addr=dev_addr
        )
        hooks_box["hooks"] = hooks
        config.plugins.on_startup(command="serve", dirty=False)
        return config

    try:
        with _mkdocs_logs(reporter, warnings):
            config = get_config()
            host, port = config.dev_addr
            url = f"http://{host}:{port}/"

            def builder(cfg: Any = None) -> None:
                cfg = cfg or get_config()
                cfg.site_url = url
                build(cfg, serve_url=url)

            server = LiveReloadServer(builder=builder, host=host, port=port, root=site_dir)
            try:
                builder(config)
            except Abort as exc:
                raise _strict_error(exc, warnings) from None
            for path in (
                workspace.atoms_dir,
                workspace.interviews_dir,
                Path(config.docs_dir),
                workspace.mkdocs_yml,
                workspace.kb_yaml,
            ):
                if path.exists():
                    server.watch(str(path))
            reporter.info(f"Serving the review site on {url} (Ctrl-C stops)")
            try:
                server.serve()
            except KeyboardInterrupt:
                pass
            except OSError as exc:  # the address is taken or not of this machine
                raise KbError(
                    f"Could not serve the site on {host}:{port}: {exc.strerror or exc}.",
                    "Is another server on that port? Pass --dev-addr HOST:PORT (or set dev_addr in mkdocs.yml).",
                ) from None
            finally:
                server.shutdown()
                config.plugins.on_shutdown()
    finally:
        shutil.rmtree(site_dir, ignore_errors=True)
    counts = hooks_box["hooks"].summary() if "hooks" in hooks_box else {"atoms": 0, "interviews": 0, "pages": 0}
    return SiteReport(site_dir=Path(site_dir), warnings=warnings, **counts)
