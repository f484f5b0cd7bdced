"""Every mistake in a recipe is one line naming the file, the field and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerbuild.errors import RecipeError
from layerbuild.recipe import load_recipe

VALID = """\
name = "demo"
runtimes = ["python3.12"]
requirements = ["requests"]
"""

# (recipe text, text the one-line error must contain)
BROKEN_RECIPES = [
    ('runtimes = ["python3.12"]\n', "field 'requirements' is missing"),
    ('requirements = ["x"]\n', "field 'runtimes' is missing"),
    (VALID + "colour = 'blue'\n", "unknown field 'colour'"),
    (VALID.replace("python3.12", "python3.8"), "'python3.8'"),
    (VALID.replace("python3.12", "provided.al2"), "'provided.al2'"),
    (VALID.replace('["python3.12"]', '"python3.12"'), "field 'runtimes'"),
    (VALID.replace('["python3.12"]', "[]"), "field 'runtimes'"),
    (VALID.replace('["python3.12"]', '["python3.12", "python3.12"]'), "each once"),
    (VALID + 'architectures = ["amd64"]\n', "'amd64'"),
    (VALID + 'architectures = "arm64"\n', "field 'architectures'"),
    (VALID + 'architectures = ["x86_64", "arm64", "x86_64"]\n', "each once"),
    (VALID.replace('["requests"]', '["requests>>2"]'), "'requests>>2'"),
    (VALID.replace('["requests"]', '["numpy=>1"]'), "'numpy=>1'"),
    (VALID.replace('["requests"]', '"requests"'), "field 'requirements'"),
    (VALID.replace('["requests"]', "[1, 2]"), "field 'requirements'"),
    (VALID + 'requirements-file = "missing.txt"\n', "field 'requirements-file'"),
    (VALID.replace('"demo"', '"bad name!"'), "field 'name'"),
    (VALID.replace('"demo"', '""'), "field 'name'"),
    (VALID.replace('"demo"', "42"), "field 'name'"),
    (VALID + "description = 3\n", "field 'description'"),
    (VALID + f'description = "{"x" * 257}"\n', "field 'description'"),
    (VALID + f'license = "{"x" * 513}"\n', "field 'license'"),
    (VALID + 'kind = "nodejs"\n', "field 'kind'"),
    (VALID + "[build]\nslim = 'yes'\n", "field 'build.slim'"),
    (VALID + "[build]\nsize-budget = '300MB'\n", "field 'build.size-budget'"),
    (VALID + "[build]\nsize-budget = 'huge'\n", "field 'build.size-budget'"),
    (VALID + "[build]\nsize-budget = -5\n", "field 'build.size-budget'"),
    (VALID + "[build]\nsize-budget = true\n", "field 'build.size-budget'"),
    (VALID + "[build]\nexclude = '**/tests'\n", "field 'build.exclude'"),
    (VALID + "[build]\nexclude = [3]\n", "field 'build.exclude'"),
    (VALID + "[build]\nstrip = true\n", "unknown field 'build.strip'"),
    (VALID + "[build]\ntest = ['import x']\n", "field 'build.test'"),
    (VALID + "[build]\ncombine-runtimes = 1\n", "field 'build.combine-runtimes'"),
    (VALID + "[build]\nsystem-packages = 'libpq'\n", "field 'build.system-packages'"),
    (VALID + "build = 3\n", "field 'build'"),
    (VALID + "[runtime]\nbootstrap = 'b'\n", "field 'runtime'"),
    ("name = \n", "not valid TOML"),
    ("runtimes = [python3.12]\n", "not valid TOML"),
    ('name = "a"\nname = "b"\n', "not valid TOML"),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN_RECIPES)
def test_broken_recipe_is_one_line_naming_file_and_field(
    recipe_dir: Path, text: str, expected: str
) -> None:
    """The error names the file and the field or value, on a single line."""
    path = recipe_dir / "demo.toml"
    path.write_text(text)

    with pytest.raises(RecipeError) as caught:
        load_recipe(path)

    message = str(caught.value)
    assert str(path) in message
    assert expected in message
    assert "\n" not in message


def test_recipe_that_is_not_utf8_is_refused(recipe_dir: Path) -> None:
    """Binary junk in place of a recipe gets a clear line, not a traceback."""
    path = recipe_dir / "demo.toml"
    path.write_bytes(b"name = \xff\xfe\n")

    with pytest.raises(RecipeError, match="not UTF-8"):
        load_recipe(path)


def test_bad_line_in_requirements_file_names_file_and_line(recipe_dir: Path) -> None:
    """A requirements file beside the recipe is checked line by line."""
    (recipe_dir / "reqs.txt").write_text("requests\nnot a requirement!\n")
    path = recipe_dir / "demo.toml"
    path.write_text(
        VALID.replace('requirements = ["requests"]', 'requirements-file = "reqs.txt"')
    )

    with pytest.raises(RecipeError, match=r"reqs\.txt:2: 'not a requirement!'"):
        load_recipe(path)


@pytest.mark.parametrize(("text", "expected"), BROKEN_RECIPES[:12])
def test_cli_answers_broken_recipe_with_status_2_and_no_traceback(
    run_cli, recipe_dir: Path, text: str, expected: str
) -> None:
    """`layerbuild lock` on a broken recipe exits 2 with one error line."""
    path = recipe_dir / "demo.toml"
    path.write_text(text)

    result = run_cli("lock", str(path), "--builder", "local")

    assert result.status == 2
    assert "Traceback" not in result.stderr
    error_lines = [
        line for line in result.stderr.splitlines() if line.startswith("error:")
    ]
    assert len(error_lines) == 1
    assert expected in error_lines[0]


def test_valid_recipe_loads_with_defaults(recipe_dir: Path) -> None:
    """A minimal recipe gets x86_64 and Lambda's size limit as its budget."""
    path = recipe_dir / "demo.toml"
    path.write_text(VALID)

    recipe = load_recipe(path)

    assert recipe.architectures == ("x86_64",)
    assert recipe.build.size_budget == 262_144_000
    assert [t.slug for t in recipe.targets()] == ["python3.12-x86_64"]


def test_unknown_recipe_name_exits_2(run_cli, recipe_dir: Path) -> None:
    """Naming a recipe that does not exist is bad input."""
    result = run_cli("build", "nope", "--recipes-dir", str(recipe_dir))

    assert result.status == 2
    assert "nope.toml: no such recipe file" in result.stderr


def test_shipped_recipes_all_load() -> None:
    """Every recipe in the repository is valid."""
    from layerbuild.recipe import find_recipes

    recipes = find_recipes([], Path(__file__).resolve().parents[2] / "recipes")

    assert {"requests", "numpy-pandas", "pydantic-orjson"} <= {r.name for r in recipes}
