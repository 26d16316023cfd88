"""Where the tests' shared folders are, wherever a test file sits in the mirrored tree."""

from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
TESTS_DATA = TESTS_DIR / "data"
REPO_ROOT = TESTS_DIR.parent
