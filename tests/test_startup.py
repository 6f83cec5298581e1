"""Job start-up: the figure and table rules (`localrules`) run without importing torch or transformers."""
import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "workflow/rules"


def local_rule_scripts() -> dict[str, Path]:
    """{rule: its script} for every rule in the `localrules` list that runs a script."""
    common = (RULES / "common.smk").read_text()
    names = re.search(r"^localrules:\n((?:    \w+,\n)+)", common, re.M).group(1).split()
    text = "\n".join(f.read_text() for f in sorted(RULES.glob("*.smk")))
    scripts = {}
    for name in (n.rstrip(",") for n in names):
        body = re.search(rf"^rule {name}:\n(.*?)(?=^(?:use )?rule |\Z)", text, re.M | re.S)
        script = body and re.search(r'script:\n\s+"\.\./scripts/(\w+\.py)"', body.group(1))
        if script:
            scripts[name] = REPO / "workflow/scripts" / script.group(1)
    return scripts


def dualmech_imports(script: Path) -> list[str]:
    mods = []
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dualmech"):
            mods += [f"{node.module}.{a.name}" if node.module == "dualmech" else node.module for a in node.names]
        elif isinstance(node, ast.Import):
            mods += [a.name for a in node.names if a.name.startswith("dualmech")]
    return mods


# reads each model's canvas geometry from its checkpoint's config and processor (transformers): one job per run
NEEDS_TRANSFORMERS = {"published_vs_regenerated"}


def test_figure_and_table_rules_do_not_import_torch():
    scripts = {r: s for r, s in local_rule_scripts().items() if r not in NEEDS_TRANSFORMERS}
    assert {"fig3", "fig6", "fig4", "table1", "table5", "patching_summary", "backup_layers", "claims"} <= set(scripts)
    modules = sorted({m for s in scripts.values() for m in dualmech_imports(s)})
    assert "dualmech.patching_tables" in modules and "dualmech.snake" in modules
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "print(sorted(m for m in ('torch', 'transformers', 'safetensors') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"imported by the figure and table rules: {out.stdout}"
