"""Where a post-treatment biopsy's clones come from (clonal replacement; Yost et al. 2019, Nat Med
25:1251; Wu et al. 2020, Nature 579:274).

Input is one patient's wide clone table (``count_<sample>`` per sample, :func:`tcrtrack.patient.wide_counts`,
optionally with boolean ``expanded_in_blood`` / ``flagged`` columns) and the patient's sample-sheet rows.
Technical replicates are pooled (:mod:`tcrtrack.design`). Every clone of a post-treatment biopsy
(day > 0, count ``b_i > 0``) falls in exactly one class, checked in this order:

1. ``pre_tumor``: seen in the pre-treatment biopsy (every biopsy with day <= 0 pooled, count ``a_i``);
2. ``baseline_blood``: new to the tumour, seen in baseline blood (every blood draw with day <= 0);
3. ``post_blood``: new to both, seen in post-infusion blood (day > 0; and in the infused product when
   ``include_product``): the therapy-era blood;
4. ``novel``: seen nowhere else.

Absence from a shallow pre-treatment biopsy is weak evidence, so each class is reported with its
expected share under **no replacement** (the biopsies sample one unchanged tumour repertoire),
given the depths ``N_pre`` and ``N_post``:

``expectation="conditional"`` (default)
    Under Poisson sampling of one repertoire, a clone's pooled count ``t_i = a_i + b_i`` splits
    binomially, ``a_i | t_i ~ Bin(t_i, w)`` with ``w = N_pre / (N_pre + N_post)``, whatever its true
    frequency. Each of its templates is a draw of "detection in the pre biopsy" with probability
    ``w``, so ``P(a_i >= 1 | t_i) = 1 - (1 - w)^t_i`` (:func:`tcrtrack.kinetics.detection_probability`
    with ``f = w``, ``N = t_i``). Over every clone seen in either biopsy:
    ``E[#post] = sum_i (1 - w^t_i)``, ``E[#class 1] = sum_i (1 - (1-w)^t_i - w^t_i)``,
    ``E[#class c] = sum_i (1-w)^t_i 1(blood class of i = c)`` for c = 2, 3, 4; templates:
    ``E[b_i 1(a_i >= 1)] = t_i (1-w) - t_i (1-w)^t_i``, ``E[b_i 1(a_i = 0)] = t_i (1-w)^t_i``.
    Exact under multinomial/Poisson sampling; no frequency has to be estimated.
``expectation="plugin"``
    Each post clone's chance to have been seen pre from its post frequency:
    ``P_i = 1 - (1 - b_i/N_post)^N_pre``; ``E[#class 1] = sum P_i``, ``E[#class c] = sum (1-P_i) 1(c)``.
    Biased upwards for rare clones (a singleton's ``b/N`` overstates a clone seen once by chance),
    so it overstates the persistence expected; kept for comparison.

``adjusted_new_share = 1 - observed / expected`` of class 1 (clones, and templates) then estimates the
share of the post biopsy's detectable clones that were *not* in the tumour before, corrected for the
depths: about 0 without replacement at any pre-biopsy depth. Caveat: biopsies also differ by spatial
heterogeneity, which the sampling model ignores; read values near 0 as "no evidence beyond sampling".
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from tcrtrack.design import Timepoint, baseline_timepoint, pooled, timepoints
from tcrtrack.kinetics import detection_probability

CLASSES = ("pre_tumor", "baseline_blood", "post_blood", "novel")
#: Columns of :func:`clone_origin` (one row per post-treatment biopsy and class).
ORIGIN_SCHEMA: dict[str, pl.DataType] = {
    "patient": pl.Utf8(),
    "biopsy_day": pl.Int64(),
    "biopsy_samples": pl.Utf8(),
    "biopsy_depth": pl.Int64(),
    "pre_biopsy_depth": pl.Int64(),
    "baseline_blood_depth": pl.Int64(),
    "post_blood_depth": pl.Int64(),
    "class_rank": pl.Int64(),
    "origin": pl.Utf8(),
    "n_clones": pl.Int64(),
    "templates": pl.Int64(),
    "clone_share": pl.Float64(),
    "template_share": pl.Float64(),
    "expected_clones": pl.Float64(),
    "expected_clone_share": pl.Float64(),
    "expected_template_share": pl.Float64(),
    "n_expanded": pl.Int64(),
    "expanded_share": pl.Float64(),
    "n_flagged": pl.Int64(),
    "flagged_share": pl.Float64(),
    "flagged_template_share": pl.Float64(),
    "expectation": pl.Utf8(),
    "note": pl.Utf8(),
}


def _counts(wide: pl.DataFrame, point: Timepoint | None) -> tuple[np.ndarray, int]:
    if point is None:
        return np.zeros(wide.height, dtype=np.int64), 0
    return pooled(wide, point)


def _flag(wide: pl.DataFrame, name: str | None) -> np.ndarray:
    if name is None or name not in wide.columns:
        return np.zeros(wide.height, dtype=bool)
    return wide[name].fill_null(False).to_numpy().astype(bool)


def _share(num: float, den: float) -> float | None:
    return float(num) / float(den) if den > 0 else None


def _expected(
    a: np.ndarray, b: np.ndarray, blood_class: np.ndarray, n_pre: int, n_post: int, expectation: str
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Expected clones and templates per class (index 0..3) and their denominators."""
    exp_clones, exp_templates = np.zeros(4), np.zeros(4)
    if expectation == "conditional":
        seen = (a + b) > 0
        t = (a + b)[seen]
        w = n_pre / (n_pre + n_post) if n_pre + n_post else 0.0
        missed = 1.0 - detection_probability(w, t)  # (1 - w)^t: every template in the post biopsy
        all_pre = 1.0 - detection_probability(1.0 - w, t)  # w^t: every template in the pre biopsy
        exp_clones[0] = float(np.sum(1.0 - missed - all_pre))
        exp_templates[0] = float(np.sum(t * (1.0 - w) - t * missed))
        for c in (1, 2, 3):
            in_c = blood_class[seen] == c
            exp_clones[c] = float(np.sum(missed[in_c]))
            exp_templates[c] = float(np.sum(t[in_c] * missed[in_c]))
        return exp_clones, exp_templates, float(np.sum(1.0 - all_pre)), float(np.sum(t * (1.0 - w)))
    if expectation != "plugin":
        raise ValueError("expectation must be 'conditional' or 'plugin'")
    post = b > 0
    p = detection_probability(b[post] / n_post, n_pre) if n_pre else np.zeros(int(post.sum()))
    exp_clones[0], exp_templates[0] = float(p.sum()), float(np.sum(b[post] * p))
    for c in (1, 2, 3):
        in_c = blood_class[post] == c
        exp_clones[c] = float(np.sum(1.0 - p[in_c]))
        exp_templates[c] = float(np.sum(b[post][in_c] * (1.0 - p[in_c])))
    return exp_clones, exp_templates, float(post.sum()), float(b.sum())


def clone_origin(
    clones: pl.DataFrame,
    samples: pl.DataFrame,
    *,
    expanded: str | None = "expanded_in_blood",
    flagged: str | None = "flagged",
    expectation: Literal["conditional", "plugin"] = "conditional",
    include_product: bool = True,
    blood_until_biopsy: bool = False,
) -> pl.DataFrame:
    """Split every post-treatment biopsy's clones and templates into the four origin classes.

    Parameters
    ----------
    clones
        The patient's wide table (``count_<sample>`` for every sample in ``samples``).
    samples
        The patient's sample-sheet rows (``sample``, ``compartment``, ``day``, ``replicate``).
    expanded, flagged
        Boolean columns of ``clones`` counted within each class (missing columns count as all false).
    expectation
        How the no-replacement expectation is computed (module docstring).
    include_product
        Count clones of the infused product as therapy-era blood (class 3).
    blood_until_biopsy
        Class 3 uses only post-infusion blood drawn up to the biopsy's day (default: every draw).

    Returns
    -------
    polars.DataFrame
        :data:`ORIGIN_SCHEMA`, four rows per post-treatment biopsy in class order. ``clone_share`` =
        class clones / biopsy clones, ``template_share`` likewise for counts; ``expanded_share`` and
        ``flagged_share`` are shares of the class's clones, ``flagged_template_share`` of its templates.
    """
    samples = (
        samples.with_columns(pl.col("replicate").fill_null(1))
        if "replicate" in samples.columns
        else samples.with_columns(replicate=pl.lit(1))
    )
    patient = samples["patient"][0] if "patient" in samples.columns and samples.height else None
    tumor, blood = timepoints(samples, "tumor"), timepoints(samples, "blood")
    pre = baseline_timepoint(tumor)
    base = baseline_timepoint(blood)
    a, n_pre = _counts(clones, pre)
    bb, n_base = _counts(clones, base)
    is_expanded, is_flagged = _flag(clones, expanded), _flag(clones, flagged)
    product = [s for s in samples.filter(pl.col("compartment") == "product")["sample"]] if include_product else []
    rows = []
    for biopsy in (p for p in tumor if p.day > 0):
        later = [p for p in blood if p.day > 0 and (not blood_until_biopsy or p.day <= biopsy.day)]
        pb = np.zeros(clones.height, dtype=np.int64)
        n_pb = 0
        for point in later:
            counts, depth = pooled(clones, point)
            pb, n_pb = pb + counts, n_pb + depth
        for name in product:
            pb = pb + clones[f"count_{name}"].to_numpy()
        blood_class = np.where(bb > 0, 1, np.where(pb > 0, 2, 3))
        b, n_post = pooled(clones, biopsy)
        cls = np.where(a > 0, 0, blood_class)
        notes = [] if pre is not None else ["no pre-treatment biopsy: class 1 is empty"]
        if base is None:
            notes.append("no baseline blood: class 2 is empty")
        exp_c, exp_t, den_c, den_t = _expected(a, b, blood_class, n_pre, n_post, expectation)
        post = b > 0
        n_clones, templates = int(post.sum()), int(b.sum())
        for k, origin in enumerate(CLASSES):
            in_k = post & (cls == k)
            rows.append(
                {
                    "patient": patient,
                    "biopsy_day": biopsy.day,
                    "biopsy_samples": ",".join(biopsy.samples),
                    "biopsy_depth": n_post,
                    "pre_biopsy_depth": n_pre,
                    "baseline_blood_depth": n_base,
                    "post_blood_depth": n_pb,
                    "class_rank": k + 1,
                    "origin": origin,
                    "n_clones": int(in_k.sum()),
                    "templates": int(b[in_k].sum()),
                    "clone_share": _share(in_k.sum(), n_clones),
                    "template_share": _share(b[in_k].sum(), templates),
                    "expected_clones": float(exp_c[k]) * (n_clones / den_c if den_c else 0.0),
                    "expected_clone_share": _share(exp_c[k], den_c),
                    "expected_template_share": _share(exp_t[k], den_t),
                    "n_expanded": int((in_k & is_expanded).sum()),
                    "expanded_share": _share((in_k & is_expanded).sum(), in_k.sum()),
                    "n_flagged": int((in_k & is_flagged).sum()),
                    "flagged_share": _share((in_k & is_flagged).sum(), in_k.sum()),
                    "flagged_template_share": _share(b[in_k & is_flagged].sum(), b[in_k].sum()),
                    "expectation": expectation,
                    "note": "; ".join(notes) or None,
                }
            )
    return pl.DataFrame(rows, schema=ORIGIN_SCHEMA)


def origin_summary(origin: pl.DataFrame) -> pl.DataFrame:
    """One row per biopsy: each class's clone and template shares (``<origin>_clone_share``, ...), their
    expectations, and ``adjusted_new_share = 1 - clone_share / expected_clone_share`` of class 1
    (``adjusted_new_template_share`` likewise); the per-patient metrics the association stage tests."""
    keys = ["patient", "biopsy_day", "biopsy_depth", "pre_biopsy_depth"]
    wide = origin.pivot(
        on="origin",
        index=keys,
        values=["clone_share", "template_share", "expected_clone_share", "expected_template_share"],
        aggregate_function="first",
    )
    rename = {
        f"{v}_{o}": f"{o}_{v}"
        for o in CLASSES
        for v in ("clone_share", "template_share", "expected_clone_share", "expected_template_share")
    }
    wide = wide.rename({k: v for k, v in rename.items() if k in wide.columns})
    return wide.with_columns(
        adjusted_new_share=1 - pl.col("pre_tumor_clone_share") / pl.col("pre_tumor_expected_clone_share"),
        adjusted_new_template_share=1
        - pl.col("pre_tumor_template_share") / pl.col("pre_tumor_expected_template_share"),
    )


# --- Workflow steps (workflow/rules/clone_origin.smk, scripts/clone_origin*.py): files in, files out --------


def clone_origin_step(
    *,
    patient: str,
    clones: str,
    sheet: str,
    out: str,
    expectation: Literal["conditional", "plugin"] = "conditional",
    include_product: bool = True,
    blood_until_biopsy: bool = False,
) -> None:
    """One patient's ``clones.parquet`` and sheet rows -> ``clone_origin.tsv`` (:data:`ORIGIN_SCHEMA`)."""
    import logging

    from tcrtrack.io import write_tsv
    from tcrtrack.samplesheet import read_patient_sheet

    samples = read_patient_sheet(sheet, patient)
    columns = pl.read_parquet_schema(clones)
    wanted = [c for c in columns if c.startswith("count_") or c in ("expanded_in_blood", "flagged")]
    table = clone_origin(
        pl.read_parquet(clones, columns=wanted),
        samples,
        expectation=expectation,
        include_product=include_product,
        blood_until_biopsy=blood_until_biopsy,
    )
    write_tsv(table.with_columns(patient=pl.lit(patient)), out)
    logging.getLogger(__name__).info("%s: origin of %d post-treatment biopsies", patient, table.height // 4)


def clone_origin_cohort_step(
    *, origins: list[str], sheet: str, group_by: str | None, out: str, summary_out: str, figure: str
) -> None:
    """Every patient's ``clone_origin.tsv`` -> the cohort table (with the sheet's metadata), the per-biopsy
    summary (:func:`origin_summary`, feeding the association stage) and the stacked-bar figure."""
    from tcrtrack.cohort_tables import patient_metadata
    from tcrtrack.io import read_tsv, write_tsv
    from tcrtrack.plots.clone_origin import clone_origin_figure
    from tcrtrack.plots.style import save_figure
    from tcrtrack.samplesheet import read_sample_sheet

    samples = read_sample_sheet(sheet, check_files=False)
    frames = [read_tsv(p).cast(ORIGIN_SCHEMA) for p in origins]
    cohort = pl.concat(frames) if frames else pl.DataFrame(schema=ORIGIN_SCHEMA)
    summary = (
        origin_summary(cohort)
        if cohort.height
        else pl.DataFrame(
            schema={"patient": pl.Utf8, "biopsy_day": pl.Int64, "biopsy_depth": pl.Int64, "pre_biopsy_depth": pl.Int64}
        )
    )
    meta = patient_metadata(samples)
    write_tsv(cohort.join(meta, on="patient", how="left", maintain_order="left"), out)
    write_tsv(summary.join(meta, on="patient", how="left", maintain_order="left"), summary_out)
    save_figure(clone_origin_figure(cohort, samples, group_by=group_by), figure)
