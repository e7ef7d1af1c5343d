"""Error codes: a StrEnum per area, listed in one place (api.errors, and UserError.code in the
SDL), and every raise names a member, so a code cannot be misspelt or silently invented."""

from __future__ import annotations

import ast
from pathlib import Path

import divide_support
from divide_support.api.errors import ALL_ERROR_CODES, ERROR_CODE_ENUMS

PACKAGE = Path(divide_support.__file__).parent
# the repository's SDL, beside the tests (the package may be installed elsewhere)
SDL = Path(__file__).resolve().parent.parent / "graphql" / "schema.graphql"


def _raises() -> list[tuple[str, int, ast.expr | None]]:
    """(file, line, first argument) of every DomainError(...) call in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name == "DomainError":
                    code = node.args[0] if node.args else None
                    found.append((str(path.relative_to(PACKAGE)), node.lineno, code))
    return found


def test_every_raise_names_a_member_of_an_areas_enum():
    enums = {enum.__name__: {member.name for member in enum} for enum in ERROR_CODE_ENUMS}
    raises = _raises()
    assert len(raises) > 50  # the walk found the raise sites
    for where, line, code in raises:
        if where == "core/errors.py" and isinstance(code, ast.Name):
            continue  # DomainError's subclasses pass their own code through
        assert isinstance(code, ast.Attribute) and isinstance(code.value, ast.Name), (
            f"{where}:{line}: DomainError's code must be a member, e.g. SchedulingCode.X")
        assert code.value.id in enums and code.attr in enums[code.value.id], f"{where}:{line}"


def test_codes_are_defined_once_and_each_is_used():
    values = [str(member) for enum in ERROR_CODE_ENUMS for member in enum]
    assert len(values) == len(set(values)), "a code is defined by two areas: move it to core"
    source = "\n".join(path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")
                       if path.name != "errors.py" or path.parent.name == "core")
    for enum in ERROR_CODE_ENUMS:
        for member in enum:
            assert f"{enum.__name__}.{member.name}" in source, f"{enum.__name__}.{member.name} unused"


def test_the_sdl_lists_every_code():
    sdl = SDL.read_text(encoding="utf-8")
    description = sdl.split("type UserError {", 1)[1].split("code: String!", 1)[0]
    for code in ALL_ERROR_CODES:
        assert f" {code}," in description or f" {code}." in description, code


# Where each call takes the field an error names (position, or the `field=` keyword).
FIELD_POSITION = {"DomainError": 2, "NotFound": 1, "Forbidden": 0, "decode_id": 2,
                  "decode_optional": 2, "clean_text": 1, "required_text": 1}


def test_services_name_fields_in_domain_terms_and_the_api_adds_the_path():
    """A service names a field as the domain does ("resident_id"); only api.errors knows
    that the client sent it as ["input", "residentId"]."""
    named = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in FIELD_POSITION and name != "get_scoped":
                continue
            position = FIELD_POSITION.get(name, -1)
            given = [kw.value for kw in node.keywords if kw.arg == "field"]
            if 0 <= position < len(node.args):
                given.append(node.args[position])
            for value in given:
                where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
                assert not isinstance(value, ast.List | ast.Tuple), f"{where}: a path, not a name"
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    assert value.value.isidentifier() and value.value == value.value.lower(), \
                        f"{where}: {value.value!r} is not a domain name (snake_case)"
                    named.append(value.value)
    assert {"resident_id", "email", "session_id", "capacity"} <= set(named)
