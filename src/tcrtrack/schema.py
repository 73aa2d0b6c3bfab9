"""Column contracts shared by every step (the Parquet files between rules).

Clonotype table (``results/clonotypes/{patient}/{sample}.parquet``), one row per clonotype,
sorted by ``count`` descending then ``clone_id``:

==============  =======  ==========================================================
column          dtype    meaning
==============  =======  ==========================================================
clone_id        Utf8     the clonotype key: its defining fields joined by ``|``
junction_aa     Utf8     CDR3 junction, amino acids (IMGT: conserved C to F/W)
v_gene          Utf8     V gene without allele (``TRBV5-1``); ``""`` when not called
j_gene          Utf8     J gene without allele
junction        Utf8     junction nucleotides (null unless the input had them)
count           Int64    templates/reads/cells of the clonotype (see QC ``count_source``)
frequency       Float64  count / total count of the sample
v_ambiguous     Boolean  some input row had several V calls (the first was kept)
j_ambiguous     Boolean  some input row had several J calls
==============  =======  ==========================================================

Clonotype definitions (config ``clonotype.definition``):
``aa_vj`` = junction_aa + V gene + J gene (default); ``aa`` = junction_aa;
``nt`` = junction (nucleotides) + V gene + J gene.
"""

from __future__ import annotations

import polars as pl

CLONOTYPE_SCHEMA: dict[str, pl.DataType] = {
    "clone_id": pl.Utf8(),
    "junction_aa": pl.Utf8(),
    "v_gene": pl.Utf8(),
    "j_gene": pl.Utf8(),
    "junction": pl.Utf8(),
    "count": pl.Int64(),
    "frequency": pl.Float64(),
    "v_ambiguous": pl.Boolean(),
    "j_ambiguous": pl.Boolean(),
}

CLONOTYPE_DEFINITIONS: dict[str, tuple[str, ...]] = {
    "aa_vj": ("junction_aa", "v_gene", "j_gene"),
    "aa": ("junction_aa",),
    "nt": ("junction", "v_gene", "j_gene"),
}

COMPARTMENTS: tuple[str, ...] = ("blood", "tumor", "product")
