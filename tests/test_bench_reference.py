"""scripts/bench_reference.py: its argument checking, and its reference iteration on stand-in networks on the CPU.

The real comparison needs a CUDA GPU and a clone of the public reference; here a fake clone with the same module
names (tiny networks) checks the plumbing: the import from the clone, the iteration and the report.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "bench_reference.py"

FAKE_MAP = '''
import torch.nn as nn
class NCSNpp(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.conv = nn.Conv2d(config.num_channels, config.num_channels, 3, padding=1)
        self.z = nn.Linear(config.nz, config.num_channels)
    def forward(self, x, z):
        return self.conv(x) + self.z(z)[:, :, None, None]
'''
FAKE_POTENTIAL = '''
import torch.nn as nn
class Discriminator_small(nn.Module):
    def __init__(self, nc=3, ngf=64, act=None):
        super().__init__()
        self.conv, self.act = nn.Conv2d(nc, 4, 3, stride=2), act
        self.end_linear = nn.Linear(4, 1)
    def forward(self, x):
        return self.end_linear(self.act(self.conv(x)).mean((2, 3)))
Discriminator_large = Discriminator_small
'''
FAKE_UTILS = '''
import torch
def select_phi(name):
    return {"kl": torch.exp, "linear": lambda x: x}[name]
class EMA:
    def __init__(self, opt, ema_decay):
        self.optimizer, self.ema_decay = opt, ema_decay
    def step(self):
        return self.optimizer.step()
'''


def _script():
    spec = importlib.util.spec_from_file_location("bench_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture
def fake_clone(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "models" / "ncsnpp_generator_adagn.py").write_text(FAKE_MAP)
    (tmp_path / "models" / "discriminator.py").write_text(FAKE_POTENTIAL)
    (tmp_path / "utils.py").write_text(FAKE_UTILS)
    saved_path = list(sys.path)
    yield tmp_path
    sys.path[:] = saved_path
    for name in [n for n in sys.modules if n == "utils" or n == "models" or n.startswith("models.")]:
        del sys.modules[name]


@pytest.mark.parametrize("args", [(), ("--reference", "does/not/exist")])
def test_without_the_clone_it_stops_with_one_sentence(args):
    proc = _run(*args)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "git clone https://github.com/Jae-Moo/UOTM.git" in lines[0] and "--reference" in lines[0]


def test_bad_numbers_stop_with_one_sentence(fake_clone):
    proc = _run("--reference", str(fake_clone), "--steps", "0")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: need --steps >= 1, --warmup >= 0 and --batch >= 1, got 0, 5 and None"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a GPU")
def test_without_a_gpu_it_stops_with_one_sentence(fake_clone):
    proc = _run("--reference", str(fake_clone))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "CUDA GPU" in lines[0] and "NVIDIA GPU" in lines[0]


@pytest.mark.parametrize("preset", ["cifar10", "celeba_256"])
def test_reference_iteration_runs_on_networks_imported_from_the_clone(fake_clone, preset):
    script = _script()
    ref = script.import_reference(script.check_clone(str(fake_clone)))
    assert ref.NCSNpp.__module__ == "models.ncsnpp_generator_adagn"
    report = script.time_reference(ref, preset, batch=2, steps=2, warmup=1, device="cpu")
    size = script.REFERENCE[preset]["image_size"]
    assert (report["preset"], report["batch"], report["steps"], report["warmup"]) == (preset, 2, 2, 1)
    assert report["images_per_s"] > 0 and report["ms_per_iter"] > 0 and report["peak_memory_gib"] is None
    assert report["params_map"] == 3 * 3 * 9 + 3 + 100 * 3 + 3 and size in (32, 256)
    assert torch.isfinite(torch.tensor(report["loss_map"]))


def test_table_puts_each_project_run_beside_its_reference():
    script = _script()
    ref = {"device": "GPU X", "images_per_s": 100.0, "peak_memory_gib": 2.0}
    proj = {"device": "GPU X", "images_per_s": 250.0, "peak_memory_gib": 1.5}
    text = script.table([(ref, proj, "python -m uotm bench --preset cifar10"), (ref, None, "python -m uotm x")],
                        {"cifar10": "python scripts/bench_reference.py --reference R"})
    lines = text.splitlines()
    assert lines[2] == "| GPU X | `python -m uotm bench --preset cifar10` | 100.0 | 250.0 | 2.50 | 2.0 / 1.5 |"
    assert lines[3] == "| GPU X | `python -m uotm x` | 100.0 | failed | - | 2.0 / - |"
    assert "reference cifar10: `python scripts/bench_reference.py --reference R`" in text
