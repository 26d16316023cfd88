"""Helpers for the bundle tests: one real embedder per test session, and hand-written atoms.

Loading the embedding model costs seconds, so every bundle test module shares the instance
``embedder()`` returns (it is thread-safe and its counters are read as deltas).
"""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

from pipeline.config import Settings
from pipeline.reporting import Reporter
from pipeline.workspace import Workspace


@functools.cache
def embedder():
    from pipeline.backends.embed import load_embedder

    return load_embedder(Settings.load(None))


def atom_text(
    atom_id: str,
    title: str,
    atom_type: str,
    sections: dict[str, str],
    faq: list[tuple[str, str]],
    *,
    status: str = "draft",
    tags: list[str] | None = None,
    summary: str = "",
    sources: str = "",
) -> str:
    tag_list = ", ".join(tags or [])
    reviewed = "[Dana Reviewer]" if status == "validated" else "[]"
    front = textwrap.dedent(
        f"""\
        ---
        id: {atom_id}
        title: "{title}"
        type: {atom_type}
        summary: "{summary}"
        created: 2026-03-04
        status: {status}
        reviewed_by: {reviewed}
        tags: [{tag_list}]
        """
    )
    if sources:
        front += "sources:\n" + textwrap.indent(textwrap.dedent(sources).strip() + "\n", "  ")
    body = ["---", "Short context for the atom.", ""]
    for heading, text in sections.items():
        body += [f"## {heading}", "", text.strip(), ""]
    body += ["## FAQ", ""]
    for q, a in faq:
        body += [f"**Q:** {q}", f"**A:** {a}", ""]
    return front + "\n".join(body)


ATOMS = {
    "error/argocd-sync-context-deadline-exceeded.md": atom_text(
        "argocd-sync-context-deadline-exceeded",
        "Sync fails with 'context deadline exceeded'",
        "error",
        {
            "What it means": "The Argo CD application controller gave up waiting for the repo server to render manifests.",
            "Common causes": "A slow Helm chart, a huge monorepo, or a repo server starved of CPU and memory.",
            "How to resolve": "Raise the repo server timeout (ARGOCD_EXEC_TIMEOUT) and give the repo server more memory.",
        },
        [
            (
                "Why does the sync hang for exactly 60 seconds?",
                "That is the default manifest generation timeout of the repo server.",
            ),
            ("Which component should I look at first?", "The repo server: check its logs and its memory usage."),
        ],
        status="validated",
        tags=["argocd", "sync", "timeouts"],
        summary="What the timeout means during sync and how to make it go away.",
        sources="""
        - interview: 2026-03-04-alice
          speaker: Alice Moreau
          start: 754.2
          end: 781.0
          quote: "when you see deadline exceeded it is almost always the repo server"
        """,
    ),
    "procedure/rotate-the-postgres-password.md": atom_text(
        "rotate-the-postgres-password",
        "Rotate the Postgres password",
        "procedure",
        {
            "Steps": "1. Create the new password in Vault.\n2. Update the Kubernetes secret.\n3. Restart the pgbouncer pods.",
        },
        [
            (
                "Do I need downtime to rotate the database password?",
                "No, pgbouncer reconnects with the new secret after a rolling restart.",
            )
        ],
        status="in-review",
        tags=["postgres", "secrets"],
        sources="""
        - document: runbooks/postgres.md
          heading: Password rotation
          line: 12
        """,
    ),
    "pitfall/never-force-push-to-main.md": atom_text(
        "never-force-push-to-main",
        "Never force-push to main",
        "pitfall",
        {
            "What not to do": "Do not run git push --force on the main branch.",
            "Why": "It rewrites published history and breaks every clone and the deployment pipeline.",
            "What to do instead": "Revert the bad commit with git revert and push normally.",
        },
        [("How do I undo a bad commit on main?", "Use git revert, which adds a commit that undoes it.")],
        tags=["git"],
    ),
    "troubleshooting-tip/old-ldap-tip.md": atom_text(
        "old-ldap-tip",
        "Restart the LDAP proxy when logins hang",
        "troubleshooting-tip",
        {"Symptom": "Logins hang for a minute.", "Tip": "Restart the LDAP proxy."},
        [("What do I do when logins hang?", "Restart the LDAP proxy.")],
        status="archived",
        tags=["ldap"],
    ),
}


def make_workspace(root: Path, atoms: dict[str, str] | None = None) -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    (root / "kb.yaml").write_text("threads: 1\n", encoding="utf-8")
    for rel, text in (ATOMS if atoms is None else atoms).items():
        path = root / "atoms" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Workspace.at(root, discover=False)


def export(ws: Workspace, out: Path | None = None, **kwargs):
    from pipeline.stages import export as export_stage

    return export_stage.run(Settings.load(ws.root), ws, Reporter(), out=out, embedder=embedder(), **kwargs)
