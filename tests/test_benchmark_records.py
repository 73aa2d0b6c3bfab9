"""benchmarks/run.py names the rule of every `benchmark:` record of the workflow by its path."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_benchmark_record_names_its_rule():
    spec = importlib.util.spec_from_file_location("benchmarks_run", ROOT / "benchmarks" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    seen = 0
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        rule = None
        for line in smk.read_text().splitlines():
            if match := re.match(r"rule (\w+):", line):
                rule = match.group(1)
            elif match := re.search(r'"logs/benchmarks/(.*)"', line):
                assert run.rule_of_record(Path(match.group(1).format(patient="P01"))) == rule, (smk.name, line)
                seen += 1
    assert seen >= 20
