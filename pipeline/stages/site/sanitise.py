"""Sanitising rendered HTML with nh3: a reviewer- or LLM-written atom body cannot carry script,
event handlers or ``javascript:`` links into the site."""

from __future__ import annotations

from pipeline.errors import MissingDependencyError

_CLEANER = None


def sanitise(fragment: str) -> str:
    """Remove script, event handlers, ``javascript:`` URLs and unknown tags from rendered HTML."""
    global _CLEANER
    if _CLEANER is None:
        try:
            import nh3
        except ImportError:  # pragma: no cover - part of the site extra
            raise MissingDependencyError("nh3", "site", "Sanitising the review site's pages") from None
        tags = set(nh3.ALLOWED_TAGS) | {"audio", "source", "aside", "section", "figure", "figcaption", "mark", "time"}
        attributes = {
            "*": {"class", "id", "title", "lang", "dir", "role"},
            "a": {"href", "name"},
            "img": {"src", "alt", "width", "height", "loading"},
            "audio": {"src", "controls", "preload"},
            "source": {"src", "type"},
            "th": {"style", "colspan", "rowspan", "align"},
            "td": {"style", "colspan", "rowspan", "align"},
            "ol": {"start", "type"},
            "code": {"class"},
            "details": {"open"},
        }
        kwargs = dict(
            tags=tags,
            clean_content_tags={"script", "style"},
            attributes=attributes,
            link_rel=None,
            generic_attribute_prefixes={"data-", "aria-"},
            url_schemes={"http", "https", "mailto"},
            filter_style_properties={"text-align"},
            strip_comments=False,
        )
        cleaner_cls = getattr(nh3, "Cleaner", None)
        _CLEANER = cleaner_cls(**kwargs).clean if cleaner_cls else (lambda h: nh3.clean(h, **kwargs))
    return _CLEANER(fragment)


# ---------------------------------------------------------------------------------------------
