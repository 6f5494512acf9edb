"""The licence of the exported data, from what is known about its sources.

A batch is known when its file is one of a folder of sources that says under which licence
it may be shared: a ``README.md`` with a "## Sources and licences" section of bullets, one
per source, each naming its licence ("Licensed CC BY 4.0"), next to an ``inbox/`` folder of
the batch files. The bundled demo sample is such a folder. A batch is recognised by its
content (the SHA-256 that ingest recorded for it), never by its name alone, so a user's
file that happens to share a name inherits nothing. Every source of such a folder counts
for each of its batches (the bundled files mix banking77 and CLINC150 rows).

Batches of unknown origin get the licence the operator declared (``declared``), or
``other``, and the card says which batches they are and what to do.
"""

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: The bundled demo sample (``curation_assets/sample_data``).
BUNDLED_SOURCES = Path(__file__).resolve().parents[2] / "sample_data"
#: The licence id a dataset card uses when the licence is not known.
UNKNOWN = "other"

_SECTION = re.compile(r"^## Sources and licences\s*$(.*?)(?=^## |\Z)", re.M | re.S)
_BULLET = re.compile(r"^- \*\*(?P<name>[^*]+)\*\*:(?P<text>.*?)(?=^- |\Z)", re.M | re.S)
_LICENSED = re.compile(r"Licensed (?P<licence>.+?)\s*(?:\(|\.(?:\s|$)|$)")


@dataclass(frozen=True)
class Source:
    """One source of a known folder: its name, its licence and the attribution line."""

    name: str
    licence: str  # as the README writes it, e.g. "CC BY 4.0"
    attribution: str

    @property
    def licence_id(self) -> str:
        """The Hub's id of the licence ("CC BY 4.0" -> "cc-by-4.0")."""
        return re.sub(r"[\s_]+", "-", self.licence.strip().lower())


@dataclass(frozen=True)
class Licensing:
    """The card's ``license`` (one id or several) and what the card says about it."""

    ids: tuple[str, ...]
    sources: tuple[Source, ...]  # of the known batches
    known_batches: tuple[str, ...]
    unknown_batches: tuple[str, ...]
    declared: str | None

    @property
    def header(self) -> str | list[str]:
        return self.ids[0] if len(self.ids) == 1 else list(self.ids)


def licensing(
    batch_hashes: dict[str, str | None],
    declared: str | None = None,
    source_folders: tuple[Path, ...] = (BUNDLED_SOURCES,),
) -> Licensing:
    """The licensing of a dataset made of ``batch_hashes`` (batch -> the SHA-256 ingest
    recorded, None where unknown); ``declared`` applies to batches of unknown origin."""
    known: dict[str, tuple[Source, ...]] = {}
    for folder in source_folders:
        files, sources = _known_folder(folder)
        for batch, sha in batch_hashes.items():
            if sources and sha is not None and files.get(batch) == sha:
                known[batch] = sources
    unknown = tuple(sorted(b for b in batch_hashes if b not in known))
    sources = tuple(dict.fromkeys(s for batch in sorted(known) for s in known[batch]))
    ids = [s.licence_id for s in sources]
    if unknown or not ids:
        ids.append(declared.strip() if declared and declared.strip() else UNKNOWN)
    return Licensing(
        ids=tuple(dict.fromkeys(ids)),
        sources=sources,
        known_batches=tuple(sorted(known)),
        unknown_batches=unknown,
        declared=declared.strip() if declared and declared.strip() else None,
    )


@cache
def _known_folder(folder: Path) -> tuple[dict[str, str], tuple[Source, ...]]:
    """(batch file name -> SHA-256, the sources) of a folder of sources (empty if it has
    no readable "Sources and licences" section)."""
    readme = folder / "README.md"
    if not readme.is_file():
        return {}, ()
    sources = tuple(_sources(readme.read_text(encoding="utf-8")))
    inbox = folder / "inbox"
    files = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (sorted(inbox.iterdir()) if inbox.is_dir() else [])
        if path.is_file()
    }
    return files, sources


def _sources(readme: str) -> list[Source]:
    section = _SECTION.search(readme)
    if section is None:
        return []
    out = []
    for bullet in _BULLET.finditer(section.group(1)):
        text = " ".join(bullet.group("text").split())
        licensed = _LICENSED.search(text)
        if licensed:
            name = bullet.group("name").strip()
            out.append(Source(name, licensed.group("licence").strip(), f"{name}: {text}"))
    return out
