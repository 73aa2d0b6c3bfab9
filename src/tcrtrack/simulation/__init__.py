"""Building blocks of the synthetic-cohort simulator; :mod:`tcrtrack.simulate` composes them.

===========================  ===============================================================
:mod:`.design`               options, which libraries each patient has, the sample sheet
:mod:`.clonotypes`           a patient's OLGA clonotypes (plus non-productive and TRA decoys)
:mod:`.clone_sizes`          truncated-Pareto clone-size weights
:mod:`.truth`                true frequencies per (compartment, day), planted clones, products
:mod:`.library`              library noise: Gamma overdispersion, then a multinomial draw
:mod:`.airr`                 AIRR Rearrangement rows of one library, written gzipped
:mod:`.progress`             a stderr counter (the library imports no CLI toolkit)
===========================  ===============================================================
"""
