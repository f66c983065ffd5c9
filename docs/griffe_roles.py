"""Griffe extension of the slamjax site: Sphinx roles in docstrings shown as code.

A few docstrings say ``:func:`gblup``` or ``:class:`slamjax.Model```, which Markdown would print
as is; this shows them as `gblup` and `slamjax.Model` (a ``~`` prefix keeps the last name only).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|obj|data|exc|const):`~?([^`]+)`")


def _code(m: re.Match) -> str:
    target = m.group(1)
    return f"`{target.rsplit('.', 1)[-1] if m.group(0).count('`~') else target}`"


class SphinxRolesAsCode(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ":`" in obj.docstring.value:
            obj.docstring.value = _ROLE.sub(_code, obj.docstring.value)
