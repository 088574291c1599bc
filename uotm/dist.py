"""Several processes, one model: ``torch.distributed`` set up from torchrun's environment, and a launcher for
notebooks.

``torchrun --nproc_per_node=N -m uotm train --preset cifar10`` (or a multi-node torchrun) sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` reads them and joins the process
group (NCCL on CUDA, gloo on the CPU). Without them, a run is one process and nothing is initialised.
:func:`launch` starts such a torchrun from Python and streams its output into the notebook cell.

Several nodes: run the same torchrun command on each (``--nnodes``, ``--node_rank``, ``--rdzv_endpoint``); the run
folder must be on a file system that every node sees, since process 0 alone writes the snapshot that all read on
``--resume``.
"""

from __future__ import annotations

import codecs
import inspect
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool  # True if setup() created the process group (and cleanup() should destroy it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str | torch.device | None = None) -> DistInfo:
    """Join the process group described by torchrun's environment variables, if any.

    The device is ``device`` if given, else ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        kwargs = {}
        if device.type == "cuda" and "device_id" in inspect.signature(dist.init_process_group).parameters:
            kwargs["device_id"] = device
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", **kwargs)
        owns = True
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank, world_size, local_rank, device, owns)


def cleanup(info: DistInfo) -> None:
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """``module`` in DistributedDataParallel when there are several processes, else ``module`` itself.

    Buffers (the FIR kernels) are constants, so they are not re-broadcast at every forward."""
    if info.world_size == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    params = inspect.signature(DDP).parameters
    kwargs = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return DDP(module, device_ids=device_ids, **kwargs)


def all_reduce_mean(t: torch.Tensor, world_size: int) -> torch.Tensor:
    """The mean of ``t`` over processes (``t`` itself with one process)."""
    if world_size > 1:
        t = t.clone()
        dist.all_reduce(t)
        t /= world_size
    return t


def all_reduce_min(t: torch.Tensor, world_size: int) -> torch.Tensor:
    if world_size > 1:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return t


def launch_command(config_path: str | Path, nproc: int, run_dir: str | Path, resume: bool = False,
                   extra_args: tuple[str, ...] = (), python: str | None = None) -> list[str]:
    """The torchrun command line that :func:`launch` runs (one node, ``nproc`` processes)."""
    if not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc must be a positive integer, got {nproc!r}")
    cmd = [python or sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
           "--nproc_per_node", str(nproc), "-m", "uotm", "train", "--config", str(config_path),
           "--run-dir", str(run_dir)]
    if resume:
        cmd.append("--resume")
    return cmd + list(extra_args)


def launch(cfg, nproc: int, run_dir: str | Path, resume: bool = False, extra_args: tuple[str, ...] = (),
           env: dict | None = None) -> Path:
    """Train ``cfg`` with ``nproc`` processes on this machine, streaming their output, and return the run folder.

    Runs ``python -m torch.distributed.run --standalone --nproc_per_node nproc -m uotm train --config <yaml>
    --run-dir run_dir`` with the config written to ``run_dir/launch.yaml``; ``extra_args`` are added to the
    ``train`` command (e.g. ``("--device", "cpu")``). What the processes print reaches this process's standard
    output as it comes, so a notebook cell shows process 0's progress bar (redrawn in place) and its log lines
    (a line at every snapshot) during a run of hours; ``--quiet`` in ``extra_args`` silences them. Raises
    ``RuntimeError`` if torchrun exits with an error.
    """
    cfg.validate()
    if cfg.batch_size % nproc:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {nproc} processes")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "launch.yaml"
    from .runs import write_yaml

    write_yaml(config_path, cfg.to_dict())
    cmd = launch_command(config_path, nproc, run_dir, resume, tuple(extra_args))
    proc_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=proc_env)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        while True:
            chunk = os.read(proc.stdout.fileno(), 4096)  # whatever is there: progress bars end lines with \r
            if not chunk:
                break
            sys.stdout.write(decoder.decode(chunk))
            sys.stdout.flush()
        code = proc.wait()
    except BaseException:
        proc.terminate()
        proc.wait()
        raise
    finally:
        proc.stdout.close()
    if code != 0:
        raise RuntimeError(f"the {nproc} training processes failed (exit status {code}); their output is above")
    return run_dir


def check_device(name: str | None) -> str | None:
    """A ``--device`` the user gave: ``None`` (the default: :func:`setup` chooses), or a device that exists here;
    otherwise one sentence (``ValueError``) saying what exists."""
    if name is None:
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {name!r} is not a device: give cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {name}: no CUDA device is available here; use --device cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name}: there are {count} CUDA device(s) here, cuda:0 to cuda:{count - 1}")
    return name
