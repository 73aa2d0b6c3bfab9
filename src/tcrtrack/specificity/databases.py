"""Read TCR antigen-specificity databases into one normalised Polars schema.

Three formats are read, each a local file (no network at run time):

``vdjdb``
    The VDJdb release ``vdjdb.slim.txt`` (Shugay et al. 2018, Nucleic Acids Res. 46:D419;
    Goncharov et al. 2022, Nat. Methods 19:1017), tab-separated, with the slim column names
    ``gene, cdr3, species, antigen.epitope, antigen.gene, antigen.species, v.segm, j.segm,
    mhc.a, mhc.b, mhc.class, reference.id``; ``complex.id, v.end, j.start, vdjdb.score`` are
    optional (builds made from VDJdb's per-study chunks lack them). The full ``vdjdb.txt``
    column names (``Gene, CDR3, V, J, Species, MHC A, Epitope, Epitope species, Score``, ...) are
    accepted too.
``mcpas``
    McPAS-TCR's ``McPAS-TCR.csv`` (Tickotsky et al. 2017, Bioinformatics 33:2924).
``table``
    A lab TSV with ``junction_aa, v_gene, j_gene, epitope, antigen_species, source`` and, optionally,
    ``antigen_gene, mhc_a, mhc_b, mhc_class, score, reference``.

Normalisation (``tidytcells``; Nagano et al. 2025, ImmunoInformatics): CDR3s become junctions
(``tidytcells.junction.standardize`` adds the conserved C104 and F/W118 of a trimmed IMGT CDR3,
choosing the trailing residue from the J gene where given) and gene names become IMGT gene symbols
without allele (``tidytcells.tr.standardize(precision="gene")``; the first of several calls).
Records whose CDR3 cannot be standardised are dropped and counted in
:attr:`Database.dropped`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from tcrtrack.errors import InputFileError

DatabaseFormat = Literal["vdjdb", "mcpas", "table"]

#: Columns of a normalised database frame (one row per record).
DATABASE_COLUMNS: dict[str, pl.DataType] = {
    "junction_aa": pl.Utf8,
    "v_gene": pl.Utf8,
    "j_gene": pl.Utf8,
    "epitope": pl.Utf8,
    "antigen_gene": pl.Utf8,
    "antigen_species": pl.Utf8,
    "antigen_group": pl.Utf8,
    "viral": pl.Boolean,
    "mhc_a": pl.Utf8,
    "mhc_b": pl.Utf8,
    "mhc_class": pl.Utf8,
    "score": pl.Int64,
    "reference": pl.Utf8,
    "source": pl.Utf8,
    "cdr3_as_given": pl.Utf8,
}

_VDJDB_REQUIRED = ("gene", "cdr3", "v.segm", "j.segm", "species", "antigen.epitope", "antigen.gene", "antigen.species")
_VDJDB_OPTIONAL = ("mhc.a", "mhc.b", "mhc.class", "reference.id", "vdjdb.score", "complex.id", "v.end", "j.start")
_VDJDB_FULL_NAMES = {
    "Gene": "gene",
    "CDR3": "cdr3",
    "V": "v.segm",
    "J": "j.segm",
    "Species": "species",
    "MHC A": "mhc.a",
    "MHC B": "mhc.b",
    "MHC class": "mhc.class",
    "Epitope": "antigen.epitope",
    "Epitope gene": "antigen.gene",
    "Epitope species": "antigen.species",
    "Reference": "reference.id",
    "Score": "vdjdb.score",
    "complex.id": "complex.id",
}
_MCPAS_REQUIRED = ("CDR3.beta.aa", "TRBV", "TRBJ", "Species", "Pathology", "Epitope.peptide")
_TABLE_REQUIRED = ("junction_aa", "v_gene", "j_gene", "epitope", "antigen_species", "source")

#: Antigen species -> group label; a group in :data:`VIRAL_GROUPS` marks a virus-specific record.
_SPECIES_GROUPS: tuple[tuple[str, str], ...] = (
    (r"^(cmv|hcmv|cytomegalovirus.*|.*\(cmv\))$", "CMV"),
    (r"^(ebv|epstein.?barr.*|.*\(ebv\))$", "EBV"),
    (r"^(influenza.*|iav|ibv|flu.*)$", "Influenza"),
    (r"^(sars-?cov-?2|covid.*|.*sars-cov-2.*)$", "SARS-CoV-2"),
    (r"^(hiv.*|human immunodeficiency.*)$", "HIV"),
    (r"^(hcv|hepatitis c.*)$", "HCV"),
    (r"^(hbv|hepatitis b.*)$", "HBV"),
    (r"^(yfv|yellow fever.*)$", "YFV"),
    (r"^(denv.*|dengue.*)$", "DENV"),
    (r"^(htlv.*)$", "HTLV"),
    (r"^(hsv.*|herpes simplex.*)$", "HSV"),
    (r"^(vzv|varicella.*)$", "VZV"),
    (r"^(adv|adenovirus.*)$", "AdV"),
    (r"^(hcov.*|sars-cov|mers.*)$", "other coronavirus"),
    (r"^(hpv.*|human papilloma.*)$", "HPV"),
    (r"^(mcpyv|merkel.*)$", "MCPyV"),
    (r"^(rotavirus.*|coxsackie.*|hhv.*|kshv|lcmv|measles.*|mumps.*|rsv|zika.*|vaccinia.*|.*virus.*)$", "other virus"),
)
VIRAL_GROUPS = frozenset(
    {
        "CMV",
        "EBV",
        "Influenza",
        "SARS-CoV-2",
        "HIV",
        "HCV",
        "HBV",
        "YFV",
        "DENV",
        "HTLV",
        "HSV",
        "VZV",
        "AdV",
        "other coronavirus",
        "HPV",
        "MCPyV",
        "other virus",
    }
)
_SPECIES_ALIASES = {
    "homosapiens": "HomoSapiens",
    "human": "HomoSapiens",
    "homo sapiens": "HomoSapiens",
    "musmusculus": "MusMusculus",
    "mouse": "MusMusculus",
    "mus musculus": "MusMusculus",
}

log = logging.getLogger(__name__)


class DatabaseFileError(InputFileError):
    """An annotation database file is missing, unreadable or not in the declared format."""


@dataclass(frozen=True)
class Database:
    """A normalised database: the records, where they came from and what was dropped.

    Attributes
    ----------
    records
        Frame with :data:`DATABASE_COLUMNS`, human TRB (or the asked species/locus) only.
    path, fmt, sha256
        The file read, its format and the SHA-256 of its bytes (for ``provenance.json``).
    dropped
        Records dropped by reason (``other_species``, ``other_locus``, ``bad_cdr3``, ``below_min_score``).
    has_scores
        Whether the file carries confidence scores (``vdjdb.score``; McPAS and lab tables may not).
    """

    records: pl.DataFrame
    path: Path
    fmt: str
    sha256: str
    dropped: dict[str, int] = field(default_factory=dict)
    has_scores: bool = False


def file_sha256(path: Path | str) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def antigen_group(species: str | None) -> str | None:
    """Group label of an antigen species (``"InfluenzaA"`` -> ``"Influenza"``); the species itself if unknown."""
    if species is None or not species.strip():
        return None
    lowered = species.strip().lower()
    for pattern, group in _SPECIES_GROUPS:
        if re.match(pattern, lowered):
            return group
    return species.strip()


def _standard_genes(values: pl.Series) -> pl.Series:
    """IMGT gene symbols via ``tidytcells.tr.standardize``; the first of several calls; ``None`` on failure."""
    import tidytcells

    mapping: dict[str, str | None] = {}
    for raw in values.drop_nulls().unique().to_list():
        first = re.split(r"[,;/ ]+", raw.strip())[0] if raw.strip() else ""
        mapping[raw] = tidytcells.tr.standardize(first, precision="gene", log_failures=False) if first else None
    return values.replace_strict(mapping, default=None, return_dtype=pl.Utf8)


def _expected_118(j_genes: list[str | None]) -> dict[str | None, str | None]:
    """The conserved trailing residue tidytcells expects for each J gene (probed on a minimal junction)."""
    import tidytcells

    out: dict[str | None, str | None] = {}
    for j in j_genes:
        try:
            probe = tidytcells.junction.standardize("CAS", j_symbol=j, log_failures=False)
        except ValueError:
            probe = None
        out[j] = probe[-1] if probe else None
    return out


def _standard_junctions(cdr3: pl.Series, j_gene: pl.Series) -> pl.Series:
    """Junctions via ``tidytcells.junction.standardize`` (trailing residue from the J gene where known).

    A fast path leaves alone what tidytcells would return unchanged: upper-case amino acids from C to the
    residue tidytcells expects for the J gene; everything else goes through tidytcells.
    """
    import tidytcells

    pairs = pl.DataFrame({"cdr3": cdr3, "j": j_gene}).unique()
    expected = _expected_118(pairs["j"].unique().to_list())
    pairs = pairs.with_columns(_end=pl.col("j").replace_strict(expected, default=None, return_dtype=pl.Utf8))
    canonical = (
        pl.col("cdr3").str.contains(r"^C[ACDEFGHIKLMNPQRSTVWY]*[FWC]$")
        & (pl.col("cdr3").str.slice(-1) == pl.col("_end"))
    ).fill_null(False)
    fast = pairs.filter(canonical).select("cdr3", "j", junction=pl.col("cdr3"))
    slow = pairs.filter(~canonical)
    out: list[str | None] = []
    for seq, j in slow.select("cdr3", "j").iter_rows():
        if seq is None or not seq.strip():
            out.append(None)
            continue
        try:
            out.append(tidytcells.junction.standardize(seq.strip(), j_symbol=j, log_failures=False))
        except ValueError:  # a J symbol tidytcells does not know: decide the trailing residue without it
            out.append(tidytcells.junction.standardize(seq.strip(), log_failures=False))
    keys = pl.concat([fast, slow.select("cdr3", "j", junction=pl.Series(out, dtype=pl.Utf8))])
    joined = pl.DataFrame({"cdr3": cdr3, "j": j_gene}).join(
        keys, on=["cdr3", "j"], how="left", nulls_equal=True, maintain_order="left"
    )
    return joined["junction"]


def _read_delimited(path: Path, separator: str, fmt: str) -> pl.DataFrame:
    if path.is_dir():
        raise DatabaseFileError(
            path,
            "is a folder, not an annotation database file",
            f"point annotation.databases at the {fmt} file inside it",
        )
    if not path.is_file():
        raise DatabaseFileError(
            path, "annotation database file not found", f"point annotation.databases at an existing {fmt} file"
        )
    with path.open("rb") as handle:
        if handle.read(4) == b"PK\x03\x04":
            raise DatabaseFileError(
                path,
                "is a zip archive, not a table",
                "unpack it and point annotation.databases at the file inside (for VDJdb: vdjdb.slim.txt)",
            )
    try:
        return pl.read_csv(
            path,
            separator=separator,
            infer_schema=False,
            quote_char='"' if separator == "," else None,
            encoding="utf8-lossy",
            truncate_ragged_lines=True,
        )
    except (OSError, pl.exceptions.PolarsError) as error:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DatabaseFileError(
            path,
            f"cannot be read as a {fmt} file ({problem})",
            f"give a {'tab' if separator == chr(9) else 'comma'}-separated {fmt} file",
        ) from error


def _require(frame: pl.DataFrame, columns: tuple[str, ...], path: Path, fmt: str, hint: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DatabaseFileError(path, f"not a {fmt} file: column(s) {', '.join(missing)} missing", hint)


def _vdjdb(raw: pl.DataFrame, path: Path) -> pl.DataFrame:
    raw = raw.rename({k: v for k, v in _VDJDB_FULL_NAMES.items() if k in raw.columns and v not in raw.columns})
    _require(
        raw,
        _VDJDB_REQUIRED,
        path,
        "vdjdb",
        "use the VDJdb release vdjdb.slim.txt (tab-separated, slim column names) or declare the right format",
    )
    raw = raw.with_columns(pl.lit(None, dtype=pl.Utf8).alias(c) for c in _VDJDB_OPTIONAL if c not in raw.columns)
    score = pl.col("vdjdb.score").str.strip_chars().cast(pl.Int64, strict=False)
    return raw.select(
        locus=pl.col("gene"),
        species=pl.col("species"),
        cdr3_as_given=pl.col("cdr3"),
        v_raw=pl.col("v.segm"),
        j_raw=pl.col("j.segm"),
        epitope=pl.col("antigen.epitope"),
        antigen_gene=pl.col("antigen.gene"),
        antigen_species=pl.col("antigen.species"),
        mhc_a=pl.col("mhc.a"),
        mhc_b=pl.col("mhc.b"),
        mhc_class=pl.col("mhc.class"),
        score=score,
        reference=pl.col("reference.id"),
        source=pl.lit("vdjdb"),
    )


def _mcpas(raw: pl.DataFrame, path: Path, locus: str) -> pl.DataFrame:
    _require(raw, _MCPAS_REQUIRED, path, "mcpas", "use McPAS-TCR.csv (comma-separated) or declare the right format")
    chain = "beta" if locus == "TRB" else "alpha"
    v, j = ("TRBV", "TRBJ") if locus == "TRB" else ("TRAV", "TRAJ")
    opt = {
        c: (pl.col(c) if c in raw.columns else pl.lit(None, dtype=pl.Utf8))
        for c in ("Antigen.protein", "MHC", "PubMed.ID", v, j, f"CDR3.{chain}.aa")
    }
    return raw.select(
        locus=pl.lit(locus),
        species=pl.col("Species"),
        cdr3_as_given=opt[f"CDR3.{chain}.aa"],
        v_raw=opt[v],
        j_raw=opt[j],
        epitope=pl.col("Epitope.peptide"),
        antigen_gene=opt["Antigen.protein"],
        antigen_species=pl.col("Pathology"),
        mhc_a=opt["MHC"],
        mhc_b=pl.lit(None, dtype=pl.Utf8),
        mhc_class=pl.lit(None, dtype=pl.Utf8),
        score=pl.lit(None, dtype=pl.Int64),
        reference=pl.concat_str(pl.lit("PMID:"), opt["PubMed.ID"]),
        source=pl.lit("mcpas"),
    )


def _table(raw: pl.DataFrame, path: Path, locus: str, species: str) -> pl.DataFrame:
    _require(
        raw,
        _TABLE_REQUIRED,
        path,
        "table",
        "give a TSV with columns junction_aa, v_gene, j_gene, epitope, antigen_species, source",
    )
    opt = {
        c: (pl.col(c) if c in raw.columns else pl.lit(None, dtype=pl.Utf8))
        for c in ("antigen_gene", "mhc_a", "mhc_b", "mhc_class", "score", "reference", "species", "locus")
    }
    return raw.select(
        locus=pl.coalesce(opt["locus"], pl.lit(locus)),
        species=pl.coalesce(opt["species"], pl.lit(species)),
        cdr3_as_given=pl.col("junction_aa"),
        v_raw=pl.col("v_gene"),
        j_raw=pl.col("j_gene"),
        epitope=pl.col("epitope"),
        antigen_gene=opt["antigen_gene"],
        antigen_species=pl.col("antigen_species"),
        mhc_a=opt["mhc_a"],
        mhc_b=opt["mhc_b"],
        mhc_class=opt["mhc_class"],
        score=opt["score"].str.strip_chars().cast(pl.Int64, strict=False),
        reference=opt["reference"],
        source=pl.col("source"),
    )


def read_database(
    path: Path | str,
    *,
    fmt: DatabaseFormat,
    species: str = "HomoSapiens",
    locus: str = "TRB",
    min_score: int | None = None,
) -> Database:
    """Read one annotation database and normalise it (see the module docstring).

    Parameters
    ----------
    path
        The local database file.
    fmt
        ``"vdjdb"``, ``"mcpas"`` or ``"table"``.
    species, locus
        Records of other species (VDJdb ``HomoSapiens``; McPAS ``Human``) or loci are dropped.
    min_score
        Keep records with ``score >= min_score`` (VDJdb's 0-3 confidence). Ignored, with a warning,
        for a file without scores: it cannot be applied there.

    Returns
    -------
    Database

    Raises
    ------
    DatabaseFileError
        One line naming the file and the fix: missing, unreadable, or without the format's columns.
    """
    path = Path(path)
    if fmt not in ("vdjdb", "mcpas", "table"):
        raise DatabaseFileError(path, f"unknown annotation database format {fmt!r}", "use vdjdb, mcpas or table")
    raw = _read_delimited(path, "," if fmt == "mcpas" else "\t", fmt)
    if fmt == "vdjdb":
        frame = _vdjdb(raw, path)
    elif fmt == "mcpas":
        frame = _mcpas(raw, path, locus)
    else:
        frame = _table(raw, path, locus, species)
    want_species = _SPECIES_ALIASES.get(species.lower(), species)
    norm_species = (
        pl.col("species")
        .str.strip_chars()
        .str.to_lowercase()
        .replace_strict(_SPECIES_ALIASES, default=pl.col("species").str.strip_chars(), return_dtype=pl.Utf8)
    )
    dropped: dict[str, int] = {}
    keep = frame.filter(norm_species == want_species)
    dropped["other_species"] = frame.height - keep.height
    locus_ok = keep.filter(pl.col("locus").str.strip_chars().str.to_uppercase() == locus)
    dropped["other_locus"] = keep.height - locus_ok.height
    has_scores = bool(locus_ok["score"].is_not_null().any())
    if min_score is not None and has_scores:
        scored = locus_ok.filter(pl.col("score") >= min_score)
        dropped["below_min_score"] = locus_ok.height - scored.height
        locus_ok = scored
    elif min_score is not None:
        log.warning("%s has no confidence scores: min_score=%s not applied", path, min_score)
    v_gene, j_gene = _standard_genes(locus_ok["v_raw"]), _standard_genes(locus_ok["j_raw"])
    junction = _standard_junctions(locus_ok["cdr3_as_given"], j_gene)
    records = locus_ok.with_columns(junction_aa=junction, v_gene=v_gene, j_gene=j_gene)
    good = records.filter(pl.col("junction_aa").is_not_null())
    dropped["bad_cdr3"] = records.height - good.height
    groups = {s: antigen_group(s) for s in good["antigen_species"].drop_nulls().unique().to_list()}
    good = good.with_columns(
        antigen_group=pl.col("antigen_species").replace_strict(groups, default=None, return_dtype=pl.Utf8)
    )
    good = good.with_columns(viral=pl.col("antigen_group").is_in(list(VIRAL_GROUPS)).fill_null(False))
    good = good.select([pl.col(c).cast(t) for c, t in DATABASE_COLUMNS.items()])
    if good.height == 0:
        raise DatabaseFileError(
            path,
            f"no {species} {locus} record with a usable CDR3 in this {fmt} file",
            "check the file's species and gene columns, or declare the right format",
        )
    return Database(records=good, path=path, fmt=fmt, sha256=file_sha256(path), dropped=dropped, has_scores=has_scores)


def combine(databases: list[Database]) -> pl.DataFrame:
    """All records of several databases, one frame (``source`` tells them apart)."""
    if not databases:
        return pl.DataFrame(schema=DATABASE_COLUMNS)
    return pl.concat([db.records for db in databases], how="vertical")
