"""The exported SDL, the API contract and the migrations stay in step with the code."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    build_schema,
    get_named_type,
)

from divide_support.api.schema import export_sdl, schema
from divide_support.core.migrate import pending_model_changes

ROOT = Path(__file__).resolve().parents[1]
SHARED_CONTRACT = ROOT.parent / "shared" / "design" / "api-contract.graphql"
# A copy travels with the repository, so a clean checkout (CI) checks the contract too.
CONTRACT = ROOT / "tests" / "contract" / "api-contract.graphql"

# Parts of the contract not implemented yet (none: every name is here).
DEFERRED_TYPES: set[str] = set()
DEFERRED_FIELDS: set[tuple[str, str]] = set()


def test_exported_sdl_matches_the_code():
    committed = (ROOT / "graphql" / "schema.graphql").read_text(encoding="utf-8")
    assert committed == export_sdl(), (
        "graphql/schema.graphql is stale: run `divide-support export-schema --output "
        "graphql/schema.graphql`"
    )


def test_graphql_folder_has_no_init_module():
    # An __init__.py there would shadow the graphql-core package.
    assert not (ROOT / "graphql" / "__init__.py").exists()


def _type_str(t) -> str:
    return str(t)


def test_the_contract_copy_is_the_shared_contract():
    if not SHARED_CONTRACT.exists():
        import pytest

        pytest.skip("shared/design/api-contract.graphql is not beside this checkout")
    assert CONTRACT.read_text(encoding="utf-8") == SHARED_CONTRACT.read_text(encoding="utf-8"), (
        "the design's API contract changed: copy it to tests/contract/api-contract.graphql")


def test_schema_implements_every_contract_name_and_shape():
    contract = build_schema(CONTRACT.read_text(encoding="utf-8"))
    ours = schema._schema
    problems: list[str] = []
    for name, ctype in contract.type_map.items():
        if name.startswith("__") or name in DEFERRED_TYPES or name in {"Float", "Int", "String",
                                                                         "Boolean", "ID"}:
            continue
        otype = ours.type_map.get(name)
        if otype is None:
            problems.append(f"missing type {name}")
            continue
        if hasattr(ctype, "values"):
            missing = set(ctype.values) - set(getattr(otype, "values", {}))
            if missing:
                problems.append(f"enum {name} lacks {sorted(missing)}")
        if isinstance(ctype, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, cfield in ctype.fields.items():
                if (name, field_name) in DEFERRED_FIELDS:
                    continue
                if get_named_type(cfield.type).name in DEFERRED_TYPES:
                    continue
                ofield = otype.fields.get(field_name)
                if ofield is None:
                    problems.append(f"missing field {name}.{field_name}")
                    continue
                if _type_str(ofield.type) != _type_str(cfield.type):
                    problems.append(f"{name}.{field_name}: {ofield.type} != {cfield.type}")
                for arg_name, carg in getattr(cfield, "args", {}).items():
                    oarg = ofield.args.get(arg_name)
                    if oarg is None:
                        problems.append(f"missing argument {name}.{field_name}({arg_name})")
                    elif _type_str(oarg.type) != _type_str(carg.type):
                        problems.append(f"{name}.{field_name}({arg_name}): {oarg.type} != {carg.type}")
        if isinstance(ctype, GraphQLObjectType):
            for interface in ctype.interfaces:
                if interface.name not in {i.name for i in otype.interfaces}:
                    problems.append(f"{name} does not implement {interface.name}")
    assert problems == []


async def test_models_and_migrations_agree(database):
    assert await pending_model_changes(database) == [], (
        "models changed without a migration: run `divide-support makemigrations --name ...`"
    )


def test_example_operations_are_valid_against_the_schema():
    from graphql import parse, validate

    examples = sorted((ROOT / "graphql" / "examples").glob("*.graphql"))
    assert examples
    for path in examples:
        errors = validate(schema._schema, parse(path.read_text(encoding="utf-8")))
        assert errors == [], f"{path.name}: {errors}"


async def test_limit_rules_are_built_once_so_the_validation_cache_hits():
    from strawberry.extensions.validation_cache import _get_validate_cache

    cache = _get_validate_cache(256)
    query = "{ __typename }"
    before = cache.cache_info().hits

    await schema.execute(query)
    await schema.execute(query)
    assert cache.cache_info().hits >= before + 1
