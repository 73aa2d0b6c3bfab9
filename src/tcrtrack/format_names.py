"""The repertoire formats tcrtrack reads: the one list behind :func:`tcrtrack.formats.detect_format`, the
converters, ``tcrtrack convert --from`` and the sample sheet's ``format`` column (the schema's enum is
tested against it). Kept free of imports so that the command line can build its choices cheaply."""

from __future__ import annotations

FORMATS: dict[str, str] = {
    "airr": "AIRR Rearrangement TSV (also 10x airr_rearrangement.tsv, TRUST4 *_airr.tsv, IgBLAST -outfmt 19)",
    "immunoseq_v2": "Adaptive immunoSEQ v1/v2 export (nucleotide, aminoAcid, count (templates/reads), vGeneName)",
    "immunoseq_v3": "Adaptive immunoSEQ v3 export (rearrangement, amino_acid, templates, v_gene, frame_type)",
    "mixcr": "MiXCR exportClones table (cloneCount/readCount or 'Clone count', aaSeqCDR3 or 'AA. Seq. CDR3')",
    "10x_contigs": "10x Genomics filtered_/all_contig_annotations.csv (barcode, contig_id, chain, cdr3)",
    "vdjtools": "VDJtools table (count freq cdr3nt cdr3aa v d j; older '#Seq. Count Percent N Sequence ...')",
    "mitcr": "MiTCR export (Read count, Percentage, CDR3 nucleotide sequence, ..., V segments)",
    "migec": "MiGEC CdrBlast table (Count, Percentage, CDR3 nucleotide sequence, ..., Good events)",
    "migmap": "MiGMAP clonotype table (freq count v d j cdr3nt cdr3aa ... in.frame no.stop)",
    "igblast": "IgBlastWrapper table (#reads_count reads_percent events_count events_percent ... vSegment)",
    "imgt": "IMGT/HighV-QUEST 1_Summary/3_Nt-sequences/5_AA-sequences (Sequence ID, V-GENE and allele, JUNCTION)",
    "imseq": "IMSEQ clonotypes, no header (V:CDR3nt:J<TAB>count)",
    "rtcr": "RTCR results.tsv (Number of reads, Amino acid sequence, V gene, J gene, Junction nucleotide sequence)",
    "trust4": "TRUST4 *_report.tsv (#count frequency CDR3nt CDR3aa V D J C cid cid_full_length)",
}
"""Known formats and how to recognise them (``auto`` detects one from the header)."""
