"""``kb site``: the review site (mkdocs-material) built from atoms, transcripts and check's findings."""

from pipeline.stages.site.build import SiteReport, load_config, run, run_all, site_dir_of

__all__ = ["SiteReport", "load_config", "run", "run_all", "site_dir_of"]
