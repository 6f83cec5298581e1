"""The README's links to files of the repository resolve (its result figures are committed under docs/results,
drawn by `make readme-figures`)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_image_the_readme_shows_is_in_the_repository():
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())
    assert images, "the README shows no figure"
    missing = [p for p in images if not p.startswith("http") and not (ROOT / p).is_file()]
    assert not missing, f"the README shows files that are not in the repository: {missing}"


def test_the_readme_quotes_the_rule_of_which_verdicts_count():
    from dualmech.validation import COUNT_RULE
    assert COUNT_RULE in " ".join((ROOT / "README.md").read_text().split())
