"""mkdocs hooks of the review site: pages for atoms, transcripts and indexes, made from the workspace.

``kb site`` registers :class:`SiteHooks` on the mkdocs config it loads; the module-level ``on_*``
functions let a plain ``mkdocs build`` use the same logic (``hooks: [path/to/pipeline/stages/site/hooks.py]``).

Nothing is written into ``site/``: atoms (``atoms/<type>/<id>.md``), transcripts
(``interviews/<id>.md``) and index pages are virtual files added in ``on_files``, so mkdocs
renders, links and searches them like any page, and strict mode validates every Markdown link.

Safety: every value taken from atom front matter, interview files or transcripts is HTML-escaped
where it is put into a page (titles and tags too, because mkdocs-material prints them unescaped),
and the rendered HTML of every generated page is sanitised with nh3, so a reviewer- or
LLM-written atom body cannot carry script, event handlers or ``javascript:`` links.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.findings import Finding
from pipeline.models import ATOM_TYPES, Atom
from pipeline.stages.site.atom_page import atom_page
from pipeline.stages.site.index_pages import home_page, index_pages
from pipeline.stages.site.markup import atom_src, interview_src
from pipeline.stages.site.model import (
    ASSETS,
    BY_EXPERT_PAGE,
    BY_INTERVIEW_PAGE,
    BY_TYPE_PAGE,
    COVERAGE_PAGE,
    INTERVIEWS_PAGE,
    QUEUE_PAGE,
    SHIM,
    TAGS_PAGE,
    TYPE_LABELS,
    SiteModel,
    sorted_atoms,
)
from pipeline.stages.site.sanitise import sanitise
from pipeline.stages.site.transcript_page import TRANSCRIPT_SLOT, transcript_page
from pipeline.workspace import Workspace

log = logging.getLogger("mkdocs.plugins.kb")


def assets_dir() -> Path:
    return Path(str(resources.files("pipeline") / "templates" / "site"))


class SiteHooks:
    """mkdocs event handlers. ``kb site`` registers an instance with its settings and findings."""

    def __init__(
        self,
        workspace: Workspace | None = None,
        settings: Settings | None = None,
        findings: Sequence[Finding] | None = None,
        strict: bool = True,
    ) -> None:
        self.workspace = workspace
        self.settings = settings
        self.findings = findings
        self.strict = strict
        self.model: SiteModel | None = None
        self.generated: dict[str, str] = {}  # src_uri -> Markdown we generated
        self.slots: dict[str, str] = {}  # src_uri -> HTML put in place of TRANSCRIPT_SLOT
        self.sanitised: set[str] = set()
        self.edit_urls: dict[str, str | None] = {}
        self.links: list[tuple[Path, Path]] = []  # (source media, dest in site) for media: link

    # config ------------------------------------------------------------------------------
    def on_config(self, config: Any) -> Any:
        if self.workspace is None:
            self.workspace = Workspace.at(Path(config.config_file_path).parent)
        if self.settings is None:
            self.settings = Settings.load(self.workspace.root)
        for asset in ASSETS:
            target = config.extra_css if asset.endswith(".css") else config.extra_javascript
            if asset not in [str(x) for x in target]:
                target.append(asset)
        polyfills = config.extra.get("polyfills") or []
        if any("iframe-worker" in str(p) for p in polyfills):
            config.extra["polyfills"] = [SHIM if "iframe-worker" in str(p) else p for p in polyfills]
        if not any(isinstance(e, str) and e.endswith("attr_list") for e in config.markdown_extensions):
            config.markdown_extensions.append("attr_list")
        return config

    # files -------------------------------------------------------------------------------
    def on_files(self, files: Any, config: Any) -> Any:
        from mkdocs.structure.files import File

        assert self.workspace is not None and self.settings is not None
        model = self.model = SiteModel.load(self.workspace)
        for problem in model.problems:
            if self.strict:
                raise InputError(
                    problem.message,
                    "Fix the file (kb check shows every problem), or build anyway with 'kb site --no-strict'.",
                    path=problem.path,
                    line=problem.line,
                )
            log.warning("kb: skipped %s", problem)
        self.generated.clear()
        self.slots.clear()
        self.links.clear()

        def add(src_uri: str, *, content: str | None = None, abs_src_path: str | None = None) -> Any:
            old = files.get_file_from_path(src_uri)
            if old is not None:
                files.remove(old)
            f = (
                File.generated(config, src_uri, content=content)
                if content is not None
                else File.generated(config, src_uri, abs_src_path=abs_src_path)
            )
            files.append(f)
            return f

        site = assets_dir()
        for asset in (*ASSETS, SHIM):
            add(asset, abs_src_path=str(site / "assets" / Path(asset).name))

        # create every page file first (empty), so URLs between them can be computed
        atom_srcs = {a.meta.id: atom_src(a) for a in model.atoms}
        page_srcs = [*atom_srcs.values(), *(interview_src(i) for i in model.interviews)]
        tags_listing = any(k in config.plugins for k in ("material/tags", "tags"))
        indexes = index_pages(model, self.findings, tags_listing=tags_listing)
        if files.get_file_from_path("index.md") is None:
            indexes["index.md"] = home_page(model)
        placeholders = {src: add(src, content="") for src in [*page_srcs, *indexes]}

        media: dict[str, str] = {}
        mode = self.settings.site.media
        for iid, data in model.interviews.items():
            if data.recording is None or mode == "none":
                continue
            dest = f"interviews/{iid}/{data.recording.name}"
            if mode == "copy":
                add(dest, abs_src_path=str(data.recording))
            else:
                self.links.append((data.recording, Path(config.site_dir) / dest))
            media[iid] = dest

        def url(from_src: str, to_src: str) -> str:
            src_file = placeholders.get(from_src) or files.get_file_from_path(from_src)
            target = placeholders.get(to_src) or files.get_file_from_path(to_src)
            if target is None:  # media linked after the build
                from mkdocs.utils import get_relative_url

                return get_relative_url(to_src, src_file.url)
            return target.url_relative_to(src_file)

        for atom in model.atoms:
            src = atom_srcs[atom.meta.id]
            edit = self._edit_url(model.rel_paths[atom.meta.id])
            self.edit_urls[src] = edit
            self.generated[src] = atom_page(model, atom, url, edit)
        for iid, data in model.interviews.items():
            self.generated[interview_src(iid)], self.slots[interview_src(iid)] = transcript_page(
                model, data, url, media.get(iid)
            )
        self.generated.update(indexes)
        for src, text in self.generated.items():
            placeholders[src].content_string = text
        self.sanitised = set(self.generated) - {TAGS_PAGE}
        if config.nav is None:
            config.nav = self._nav(model, files)
        return files

    def _edit_url(self, rel_path: str) -> str | None:
        assert self.settings is not None
        base = self.settings.site.repo_url
        if not base:
            return None
        return base.rstrip("/") + "/" + self.settings.site.edit_uri.strip("/") + "/" + rel_path

    def _nav(self, model: SiteModel, files: Any) -> list:
        """Home, review queue, coverage, browse, interviews, atoms by type, then the user's own pages."""
        nav: list = [{"Home": "index.md"}, {"Review queue": QUEUE_PAGE}, {"Coverage": COVERAGE_PAGE}]
        nav.append({"Browse": [BY_TYPE_PAGE, TAGS_PAGE, BY_INTERVIEW_PAGE, BY_EXPERT_PAGE]})
        nav.append({"Interviews": [INTERVIEWS_PAGE, *(interview_src(i) for i in sorted(model.interviews))]})
        by_type: dict[str, list[Atom]] = defaultdict(list)
        for atom in model.atoms:
            by_type[atom.meta.type].append(atom)
        atoms_nav = [
            {TYPE_LABELS[t]: [atom_src(a) for a in sorted_atoms(by_type[t])]} for t in ATOM_TYPES if by_type.get(t)
        ]
        if atoms_nav:
            nav.append({"Atoms": atoms_nav})
        listed = {
            "index.md",
            QUEUE_PAGE,
            COVERAGE_PAGE,
            BY_TYPE_PAGE,
            TAGS_PAGE,
            BY_INTERVIEW_PAGE,
            BY_EXPERT_PAGE,
            INTERVIEWS_PAGE,
        }
        listed |= set(self.generated)
        for f in files.documentation_pages():
            if f.src_uri not in listed:
                nav.append(f.src_uri)
        return nav

    # pages -------------------------------------------------------------------------------
    def on_page_markdown(self, markdown: str, page: Any, config: Any, files: Any) -> str:
        src = page.file.src_uri
        if src in self.generated:
            page.edit_url = self.edit_urls.get(src)
        return markdown

    def on_page_content(self, html_text: str, page: Any, config: Any, files: Any) -> str:
        src = page.file.src_uri
        if src in self.slots:
            html_text = html_text.replace(TRANSCRIPT_SLOT, self.slots[src], 1)
        if src in self.sanitised:
            return sanitise(html_text)
        return html_text

    def on_post_build(self, config: Any) -> None:
        for source, dest in self.links:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists() or dest.is_symlink():
                dest.unlink()
            os.symlink(source.resolve(), dest)

    def summary(self) -> dict[str, int]:
        model = self.model
        return {
            "atoms": len(model.atoms) if model else 0,
            "interviews": len(model.interviews) if model else 0,
            "pages": len(self.generated),
        }


# ---------------------------------------------------------------------------------------------
# module-level hooks: `hooks: [pipeline/stages/site/hooks.py]` in a plain mkdocs.yml

_default = SiteHooks()


def on_config(config: Any) -> Any:
    return _default.on_config(config)


def on_files(files: Any, config: Any) -> Any:
    return _default.on_files(files, config)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return _default.on_page_markdown(markdown, page, config, files)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    return _default.on_page_content(html, page, config, files)


def on_post_build(config: Any) -> None:
    _default.on_post_build(config)


__all__ = ["SiteHooks", "SiteModel", "index_pages", "sanitise"]
