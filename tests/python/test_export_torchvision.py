"""tools/export_torchvision.py, where PyTorch and torchvision are installed (skipped otherwise):
the exported files follow tlkit's model contract and record their input size and widths."""
import json
import os
import subprocess
import sys
import zipfile

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "export_torchvision.py")


def export(tmp_path, arch, size):
    out = tmp_path / (arch + ".pt")
    run = subprocess.run([sys.executable, TOOL, "--arch", arch, "--out", str(out),
                          "--input-size", str(size)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return out, json.loads(run.stdout)


@pytest.mark.parametrize("arch,size,features,head", [
    ("resnet18", 32, 512, "fc"),            # fc
    ("mobilenet_v3_small", 32, 576, "classifier"),  # a Sequential classifier
    ("swin_t", 64, 768, "head"),            # Swin's head
])
def test_exports_features_and_logits_and_records_them(tmp_path, arch, size, features, head):
    out, entry = export(tmp_path, arch, size)
    assert entry["feature_dim"] == features and entry["logits_dim"] == 1000
    assert ("head '%s'" % head) in entry["source"]
    # The record travels inside the archive, as tlkit reads it.
    with zipfile.ZipFile(out) as z:
        name = [n for n in z.namelist() if n.endswith("extra/tlkit.json")]
        assert len(name) == 1, z.namelist()
        record = json.loads(z.read(name[0]))
    assert record == {"input_size": size, "feature_dim": features, "logits_dim": 1000}
    m = torch.jit.load(str(out)).eval()
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        f, logits = m(x)
        # The logits are the head applied to the features (the head was split off, not lost).
        assert f.shape == (2, features) and logits.shape == (2, 1000)
        assert torch.allclose(getattr(m, "head")(f), logits, atol=1e-5)


def test_without_torch_the_message_names_the_packages(tmp_path):
    # A Python that cannot import torch: hide it behind a module that raises on import.
    (tmp_path / "torch.py").write_text("raise ImportError('No module named torch')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    run = subprocess.run([sys.executable, TOOL, "--list"], capture_output=True, text=True,
                         env=env)
    assert run.returncode == 1
    assert "apt-get install python3-torch python3-torchvision" in run.stderr
