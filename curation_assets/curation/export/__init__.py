"""Export: the published ``verified`` table as a Hugging Face dataset that a fine-tune
loads directly. ``dataset`` reads the rows a fine-tune may use (train and validation, never
``excluded``) as Arrow and builds the ``DatasetDict``; ``provenance`` gathers what the card
tells about them (counts, batches, rules, decisions, people, expert time); ``licences``
finds the sources' licences; ``card`` renders the dataset card; ``folder`` writes one
folder per data version (``save_to_disk`` and the Hub's Parquet layout), audits it and
moves the ``latest`` pointer; ``hub`` pushes it when a repository is configured.

Imports the shared core and ``review`` (the declaration of ``verified``) only.
"""

from curation_assets.curation.export.dataset import SPLITS, VerifiedRows, read_verified
from curation_assets.curation.export.folder import (
    Audit,
    Written,
    audit_folder,
    export_root,
    latest_version,
    write_version,
)
from curation_assets.curation.export.hub import Push, push
from curation_assets.curation.export.provenance import Provenance, read_provenance

__all__ = [
    "SPLITS",
    "Audit",
    "Provenance",
    "Push",
    "VerifiedRows",
    "Written",
    "audit_folder",
    "export_root",
    "latest_version",
    "push",
    "read_provenance",
    "read_verified",
    "write_version",
]
