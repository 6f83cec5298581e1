"""The streaming activation store: bounded host memory, atomic, deterministic bytes, lazily readable."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from dualmech import extraction

N_CELLS = 64


def _fake(tmp_path, n_images: int, width: int):
    """An adapter stand-in and a capture that returns seeded (B, N_CELLS, width) activations per site."""
    for i in range(n_images):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(tmp_path / f"{i}.png")
    images = pd.DataFrame({"image": [f"{i}.png" for i in range(n_images)],
                           "image_sha256": [f"sha{i}" for i in range(n_images)]})
    adapter = SimpleNamespace(spec=SimpleNamespace(name="fake"), family="fake", geometry=SimpleNamespace(grid=8),
                              model=SimpleNamespace(dtype=torch.float32))

    def capture(adapter, imgs, sites):
        first = [im.getpixel((0, 0))[0] for im in imgs]
        offset = {s: int(s.split(".")[1]) + 1 if "." in s else 0 for s in sites}      # resid_post.l: l + 1
        return {s: torch.stack([torch.full((N_CELLS, width), float(i + offset[s])) for i in first]) for s in sites}
    return adapter, images, capture


def test_store_streams_atomically_and_deterministically(tmp_path, monkeypatch):
    adapter, images, capture = _fake(tmp_path, 10, 8)
    monkeypatch.setattr(extraction, "capture", capture)
    sites = ["lm_input", "resid_post.0", "resid_post.1"]
    a, b = extraction.ActivationStore(tmp_path / "a"), extraction.ActivationStore(tmp_path / "b")
    extraction.extract(adapter, images, tmp_path, a, sites, batch_size=3)
    extraction.extract(adapter, images, tmp_path, b, sites[::-1], batch_size=4)
    assert a.tensors.read_bytes() == b.tensors.read_bytes()           # same content -> same bytes
    got = a.load_tensors()
    assert list(got) == sites and got["resid_post.1"].shape == (10, N_CELLS, 8)
    assert torch.equal(got["resid_post.0"][:, 0, 0], torch.arange(10.0) + 1)
    assert json.loads(a.metadata()["sites"]) == sites
    # a failure half-way leaves neither the store nor a temporary file behind
    calls = []

    def failing(adapter, imgs, sites):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return capture(adapter, imgs, sites)
    monkeypatch.setattr(extraction, "capture", failing)
    c = extraction.ActivationStore(tmp_path / "c")
    with pytest.raises(RuntimeError, match="boom"):
        extraction.extract(adapter, images, tmp_path, c, sites, batch_size=3)
    assert not c.tensors.exists() and not list(tmp_path.glob(".c.*"))
    # a writer killed with SIGKILL cannot clean up: its temporary file goes when the store is next written
    (tmp_path / ".c.safetensors.k1ll3d").write_bytes(b"half a store")
    monkeypatch.setattr(extraction, "capture", capture)
    extraction.extract(adapter, images, tmp_path, c, sites, batch_size=3)
    assert c.tensors.read_bytes() == a.tensors.read_bytes() and not list(tmp_path.glob(".c.*"))
    # adding a site keeps the stored ones bit-identical (copied over in pieces)
    monkeypatch.setattr(extraction, "capture", capture)
    assert extraction.extract(adapter, images, tmp_path, a, sites + ["resid_post.2"], batch_size=3) == ["resid_post.2"]
    again = a.load_tensors()
    assert all(torch.equal(again[s], got[s]) for s in sites) and again["resid_post.2"].shape == (10, N_CELLS, 8)


PEAK = textwrap.dedent("""
    import resource, sys
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    import test_extraction as t
    from dualmech import extraction
    tmp = Path({tmp!r})
    adapter, images, capture = t._fake(tmp, 16, 1024)
    extraction.capture = capture
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for n_sites in (4, 32):
        sites = ["lm_input"] + [f"resid_post.{{i}}" for i in range(n_sites)]
        extraction.extract(adapter, images, tmp, extraction.ActivationStore(tmp / f"s{{n_sites}}"), sites, batch_size=2)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
""")


def test_store_peak_memory_does_not_grow_with_sites(tmp_path):
    """16 images x 33 sites x 64 cells x 1024 floats = 138 MB of activations; a batch of 2 images is 17 MB. The
    peak host-memory increase stays under 48 MB (the store is never held whole), the same for 5 and 33 sites."""
    code = PEAK.format(tests=str(__import__("pathlib").Path(__file__).parent), tmp=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    few, many = (float(x) for x in out.stdout.split())
    assert many < 48, f"peak host memory grew by {many:.0f} MB with 33 sites ({few:.0f} MB with 5)"
    assert (tmp_path / "s32.safetensors").stat().st_size > 33 * 16 * N_CELLS * 1024 * 4


READ = textwrap.dedent("""
    import sys
    import numpy as np
    from dualmech.store import ActivationStore
    got = ActivationStore({stem!r}).load()
    print(sorted(m for m in ("torch", "transformers") if m in sys.modules))
    np.savez({out!r}, **got)
""")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_store_reads_as_float32_and_without_torch_unless_bfloat16(tmp_path, dtype):
    """The probes read stores as float32 arrays: float32 and float16 stores without torch (the probes job starts
    without it), bfloat16 (which numpy lacks) through torch; the values are the stored ones either way."""
    images = pd.DataFrame({"image": ["a.png", "b.png"]})
    tensors = {"lm_input": torch.randn(2, N_CELLS, 8).to(dtype), "resid_post.0": torch.randn(2, N_CELLS, 8).to(dtype)}
    store = extraction.ActivationStore(tmp_path / "s")
    store.write(images, tensors, {"model": "fake"})
    code = READ.format(stem=str(tmp_path / "s"), out=str(tmp_path / "got.npz"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ("['torch']" if dtype == torch.bfloat16 else "[]"), out.stdout
    got = dict(np.load(tmp_path / "got.npz"))
    assert set(got) == set(tensors)
    for site, t in tensors.items():
        assert got[site].dtype == np.float32 and np.array_equal(got[site], t.float().numpy())
    with pytest.raises(KeyError, match="resid_post.3"):
        store.load(["resid_post.3"])
