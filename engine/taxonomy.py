"""The stall-cause taxonomy: reason codes for pauses, waiting and structural findings.

kimflow ships the codes of the KIM primer (``taxonomy/stall-causes.yaml``); a
municipality can add its own codes in further files of the same form. Reports
aggregate by these codes, so free-text reasons are not accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from engine.errors import DefinitionError, Diagnostic
from engine.source import parse_source

SHIPPED_TAXONOMY = Path(__file__).resolve().parent.parent / "taxonomy" / "stall-causes.yaml"
_CODE = re.compile(r"^W-[A-Z]{2,12}$")


@dataclass(frozen=True, slots=True)
class ReasonCode:
    """One stall cause."""

    code: str
    label: str
    label_en: str
    owner: str | None = None


class Taxonomy:
    """The reason codes in force: the shipped ones plus any municipal extensions.

    Args:
        codes: The codes by name.
    """

    def __init__(self, codes: Mapping[str, ReasonCode]) -> None:
        self.codes = MappingProxyType(dict(codes))

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def label(self, code: str, *, english: bool = False) -> str:
        reason = self.codes.get(code)
        if reason is None:
            return code
        return reason.label_en if english else reason.label

    def check(self, code: str) -> str | None:
        """Why ``code`` is not acceptable, or None."""
        if code in self.codes:
            return None
        return f"unknown reason code '{code}'; known codes: {', '.join(sorted(self.codes))}"


def load_taxonomy(paths: Iterable[str | Path] = ()) -> Taxonomy:
    """Load the shipped taxonomy extended by ``paths`` (later files may add codes or relabel them).

    Raises:
        DefinitionError: If a file is malformed; with file, line and column.
    """
    codes: dict[str, ReasonCode] = {}
    for path in (SHIPPED_TAXONOMY, *map(Path, paths)):
        parsed = parse_source(path.read_bytes(), str(path))
        problems: list[Diagnostic] = []
        if not isinstance(parsed.data, dict):
            raise DefinitionError([parsed.diagnostic((), "not-a-mapping", "a taxonomy maps codes to labels")])
        for code, spec in parsed.data.items():
            if not _CODE.match(code):
                problems.append(
                    parsed.diagnostic((code,), "invalid-name", f"'{code}' is not a code like W-DOC", key=True)
                )
                continue
            if not isinstance(spec, dict) or not isinstance(spec.get("label"), str):
                problems.append(parsed.diagnostic((code,), "missing-key", f"code '{code}' needs a 'label'"))
                continue
            codes[code] = ReasonCode(code, spec["label"], str(spec.get("label_en") or spec["label"]), spec.get("owner"))
        if problems:
            raise DefinitionError(problems)
    return Taxonomy(codes)


__all__ = ["SHIPPED_TAXONOMY", "ReasonCode", "Taxonomy", "load_taxonomy"]
