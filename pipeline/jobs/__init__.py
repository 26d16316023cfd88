"""Workers on Celery + Redis: ``kb worker``, ``kb run --via celery``, ``kb jobs``.

Only ``pipeline.jobs.app`` (and what it loads) imports celery, lazily; the rest (step table,
task ids, run records) is plain Python, so ``kb --help`` and a local ``kb run`` never load it.
"""
