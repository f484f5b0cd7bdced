"""Options shared by several commands, each declared once."""

from __future__ import annotations

import os
from pathlib import Path

import click

from layerbuild.targets import ARCHITECTURES, RUNTIMES

recipes_argument = click.argument("recipes", nargs=-1, metavar="[RECIPE]...")

recipes_dir_option = click.option(
    "--recipes-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("recipes"),
    show_default=True,
    help="Where recipe names are looked up.",
)

runtime_option = click.option(
    "--runtime",
    "runtimes",
    multiple=True,
    type=click.Choice(list(RUNTIMES)),
    help="Only these runtimes of each recipe (repeatable).",
)

arch_option = click.option(
    "--arch",
    "architectures",
    multiple=True,
    type=click.Choice(list(ARCHITECTURES)),
    help="Only these architectures of each recipe (repeatable).",
)

builder_option = click.option(
    "--builder",
    type=click.Choice(["auto", "docker", "local"]),
    default="auto",
    show_default=True,
    help="docker: in the runtime's image; local: no Docker; auto: docker if it runs.",
)

dist_option = click.option(
    "--dist",
    "dist_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dist"),
    show_default=True,
    help="Where zips and manifests are written.",
)

jobs_option = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default="the number of CPUs",
    help="Parallel compression threads.",
)

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print a machine-readable result on stdout."
)
