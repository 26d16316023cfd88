"""Pipeline stages: each reads files and writes files via ``run(settings, workspace, ...)``."""
