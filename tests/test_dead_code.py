"""No dead code: every function, class, method, import and constant of the package is used
by the package, its scripts or its tests (vulture). Framework entry points (strawberry
resolvers, Tortoise models, pydantic validators) are called by name and left out; what is
left that vulture cannot see used is listed below, each with why."""

from __future__ import annotations

from pathlib import Path

import vulture

import divide_support

PACKAGE = Path(divide_support.__file__).parent
REPOSITORY = Path(__file__).resolve().parents[1]

# Called by a framework, never by name in our code.
IGNORE_DECORATORS = ["@strawberry.*", "@field_validator", "@model_validator", "@pytest.fixture",
                     "@*.setter", "@contextlib.asynccontextmanager"]
IGNORE_NAMES = [
    "Meta",  # Tortoise reads a model's Meta
    "model_config",  # pydantic-settings reads it
    "on_operation", "process_errors", "enter_*",  # strawberry extension and graphql-core visitor hooks
    "acquire_connection", "_in_transaction", "client_class",  # Tortoise's backend interface
    "_split_lines", "_fill_text",  # argparse.HelpFormatter overrides
    "test_*",
]
# Constants documented for readers and held by tests: not dead, only not read by the package.
ALLOWED = {"MAX_NOISE"}
KINDS = {"function", "method", "class", "import", "property"}


def test_nothing_is_left_unused():
    finder = vulture.Vulture(ignore_names=IGNORE_NAMES, ignore_decorators=IGNORE_DECORATORS)
    paths = [str(PACKAGE), str(Path(__file__).parent)]
    if (REPOSITORY / "scripts").is_dir():
        paths.append(str(REPOSITORY / "scripts"))
    finder.scavenge(paths, exclude=["*/models.py", "*/migrations/*", "*/vendor/*"])
    dead = sorted(
        f"{Path(item.filename).relative_to(PACKAGE.parent)}:{item.first_lineno}: {item.typ} {item.name}"
        for item in finder.get_unused_code(min_confidence=60)
        if PACKAGE in Path(item.filename).parents and item.name not in ALLOWED
        and (item.typ in KINDS or (item.typ == "variable" and item.name.isupper())))
    assert dead == []
