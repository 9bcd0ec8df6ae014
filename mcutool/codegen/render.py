"""Jinja2 rendering of the files in templates/ (compute in Python, loop in the template)."""
from __future__ import annotations

from functools import lru_cache

import jinja2

from ..paths import data_dir


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=False, lstrip_blocks=False, autoescape=False)


def render(template: str, values: dict) -> str:
    return _environment().get_template(template).render(**values)
