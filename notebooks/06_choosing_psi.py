# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Choosing $\Psi$
#
# The reference code of {cite:t}`choi2023uotm` offers four conjugates $\Psi^*$: `kl`, `chi`, `softplus` and
# `linear` (balanced OT). The paper compares them by FID on CIFAR-10 and finds them close. This page compares
# them where the answer is known: one 2-D problem, the exact unbalanced plan for each $\Psi$ beside the network
# trained with it, and the quantities that tell them apart: how much of each mode of the data the generator
# reproduces, how far its samples are from the data in $W_2$, and how the training goes.
#
# ## What $\Psi$ changes
#
# The conjugate enters the semi-dual only through its derivative: the optimal marginals are
# $\tilde\mu=(\Psi_1^*)'(-v^{*c})\,\mu$ and $\tilde\nu=(\Psi_2^*)'(-v^*)\,\nu$ (chapter 2), and the map is the OT map
# between them (chapter 3). So the four choices differ in how a potential value turns into a density ratio:
#
# | $\Psi^*$ | ratio $(\Psi^*)'(s)$ | range | one pair at cost $C$ keeps |
# |---|---|---|---|
# | `kl` | $e^{s}$ | $(0,\infty)$ | $e^{-C/2}$ |
# | `chi` | $\max(1+s/2,\,0)$ | $[0,\infty)$ | $\max(1-C/4,\,0)$ |
# | `softplus` | $\sigma(s)=1/(1+e^{-s})$ | $(0,1)$ | $\sigma(-C/2)$ |
# | `linear` | $1$ | $\{1\}$ | $1$ |
#
# The last column is the exact solution of the smallest problem, one source atom and one target atom of the same mass
# $\alpha$ at cost $C$, with the same $\Psi$ on both sides. By symmetry both ends keep the same fraction $t$ of their
# mass, and the primal $\alpha\,[tC+2\Psi(t)]$ is minimal where $C+2\Psi'(t)=0$: for KL $\Psi'(t)=\log t$, for $\chi^2$
# $\Psi'(t)=2(t-1)$ (and $t=0$ once that would be negative), for the negative binary entropy
# $\Psi'(t)=\log\frac{t}{1-t}$. Three differences follow.
#
# - **KL** never drops a mode entirely, and up-weights without bound modes that are cheap to reach.
# - **$\chi^2$** drops a pair exactly once its cost exceeds 4 and otherwise decays only linearly: it cuts far modes
#   harder and near ones more gently.
# - **softplus** never up-weights (its ratio is below 1) and halves even free transport ($\sigma(0)=\tfrac12$): its
#   $\Psi$ is smallest at $t=\tfrac12$, not at 1 (chapter 3). The generator still moves every source sample, so its law
#   is normalised; what halves is the mass of the plan, and the relative weights of the modes are what matter.
#
# With the cost $\tau\lVert x-y\rVert^2$, the modes of the data that lie far from the source get less of the generator's
# output than in balanced OT, and the near ones more; how much depends on $\Psi$ and $\tau$.
#
# ## The problem
#
# Source $N(0,I_2)$; data: eight Gaussians of variance 0.02 on a circle of radius 2 (the `8gaussians` law), shifted by
# $(2,0)$ so that the circle passes through the source's mean. The modes then lie at distances from 0 (mode at the
# origin) to 4 (mode at $(4,0)$) from the source's centre, and unbalanced OT treats them differently. Balanced OT
# gives each mode exactly its share of the data.

# %% tags=["parameters"]
seed = 0  # seed of the data, the networks and the noise
num_data = 4000  # data points
shift = 2.0  # the circle of modes is centred at this point of the first axis
tau = 0.2  # cost scale
psis = ["kl", "chi", "softplus", "linear"]  # conjugates compared, each used on both sides
epochs = 80  # training epochs per conjugate
lr = 0.0003  # Adam learning rate of both networks
potential_steps = 1  # potential steps per map step
reg_lambda = 0.0  # lambda of the source-gradient regulariser, the same for every run
n_grid = 19  # grid points per axis for the source in the exact problems
n_per_mode = 15  # data points per mode in the exact problems
n_w2 = 1000  # samples for the W2 distance between the generated law and the data
mode_radius = 0.5  # a generated sample within this distance of a mode centre belongs to it
reference_potential_steps = 5  # the toy reference's schedule, trained once with kl for comparison: potential steps
reference_lr = 0.0001  # ... and learning rate
check_networks = True  # assert the claims about trained networks (they hold at these defaults for seeds 0-2)

# %% tags=["hide-input"]
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import ot
import torch

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notice; no progress bars are drawn

from uotm.book import Claims, glue, show_table
from uotm.data.toy import make_distribution
from uotm.exact import Plan, solve_uot, squared_distances, w2_squared
from uotm.plots import plot_losses
from uotm.psi import get_psi
from uotm.toy import ToyConfig, train_toy

torch.set_num_threads(1)  # the toy networks are faster on one thread
claims = Claims(enabled=check_networks)

# %% [markdown]
# First the one-pair formulas of the table, against the exact solver (for `linear` there is nothing to solve: the
# constraint keeps everything).

# %%
sigmoid = lambda s: 1.0 / (1.0 + np.exp(-s))  # noqa: E731
keeps = {"kl": lambda c: np.exp(-c / 2),
         "chi": lambda c: np.maximum(1 - c / 4, 0.0),
         "softplus": lambda c: sigmoid(-c / 2)}
pairs = [(1.0, 0.5), (0.3, 2.0), (0.05, 3.0), (1.0, 6.0)]  # (mass, cost)
for name, formula in keeps.items():
    for alpha, cost in pairs:
        plan = solve_uot(np.array([alpha]), np.array([alpha]),
                         np.array([[cost]]), name, name).plan
        kept = plan[0, 0] / alpha
        assert abs(kept - formula(cost)) < 1e-5, (name, alpha, cost, kept)

# %% tags=["hide-input"]
show_table(["one pair keeps (the solver agrees to $10^{-5}$)", *[f"at cost $C={c:g}$" for _, c in pairs]],
           [[f"`{name}`", *[formula(c) for _, c in pairs]] for name, formula in keeps.items()],
           {k + 1: ".3f" for k in range(len(pairs))})

# %% [markdown]
# ## The exact answers
#
# The data is drawn once and saved as a point cloud for the trainer (`npy:` target). For the exact problems the
# source is a grid weighted by the Gaussian density and each mode is summarised by `n_per_mode` of its points,
# weighted by the mode's share. For each unbalanced $\Psi$ the plan is `uotm.exact.solve_uot` with that $\Psi$ on
# both sides (certified by its duality gap); for `linear` it is the balanced plan, `ot.emd`. The *share* of a mode is
# the share of generated samples that land in it, $T^*_\#\mu(\text{mode})$ (chapter 4).

# %% tags=["hide-input"]
angles = np.arange(8) * np.pi / 4
centres = np.array([shift, 0.0]) + 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
distance = np.linalg.norm(centres, axis=1)  # distance of each mode from the source's centre
data = make_distribution("8gaussians").sample(num_data, torch.Generator().manual_seed(seed)).numpy()
data = (data + np.array([shift, 0.0], dtype=np.float32)).astype(np.float32)
workdir = Path(tempfile.mkdtemp(prefix="uotm-psi-"))
np.save(workdir / "shifted_ring.npy", data)
data_mode = np.argmin(((data[:, None, :] - centres[None]) ** 2).sum(axis=-1), axis=1)
data_share = np.bincount(data_mode, minlength=8) / len(data)

rng = np.random.default_rng(seed)
g = np.linspace(-4.0, 4.0, n_grid)
x_src = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
a = np.exp(-0.5 * (x_src**2).sum(axis=1))
a /= a.sum()
pts, wts, labels = [], [], []
for k in range(8):
    members = data[data_mode == k].astype(np.float64)
    pick = members[rng.choice(len(members), size=n_per_mode, replace=False)]
    pts.append(pick)
    wts.append(np.full(n_per_mode, data_share[k] / n_per_mode))
    labels.append(np.full(n_per_mode, k))
y_sum, b, y_mode = np.concatenate(pts), np.concatenate(wts), np.concatenate(labels)
cost = tau * squared_distances(x_src, y_sum)

# %%
exact = {}
for name in psis:
    if name == "linear":
        plan = ot.emd(a, b, cost, numItermax=10_000_000)
        pl = Plan(x_src, y_sum, plan, float(np.sum(plan * cost)))
    else:
        with np.errstate(invalid="ignore"):  # see the note below the table
            pl = solve_uot(a, b, cost, name, name, gap_tol=1e-6, x=x_src, y=y_sum)
    generated = a @ pl.conditional()  # T*_# mu on the summary points
    exact[name] = dict(
        plan=pl, gap=pl.gap, mass=float(pl.plan.sum()), generated=generated,
        shares=np.bincount(y_mode, weights=generated, minlength=8),
        w2=float(np.sqrt(ot.emd2(generated, b, squared_distances(y_sum, y_sum)))))

# %% tags=["hide-input"]
solved = list(psis)
order = np.argsort(distance)
print(f"Exact plans for {len(exact)} conjugates, {len(a)} x {len(b)} points; the share of each mode, nearest first:")
show_table(["mode", "distance", "data", *[f"`{n}`" for n in solved]],
           [*[[k, distance[k], data_share[k], *[exact[n]["shares"][k] for n in solved]] for k in order],
            ["mass of the plan", "", "", *[exact[n]["mass"] for n in solved]],
            ["$W_2$ to the data", "", "", *[exact[n]["w2"] for n in solved]],
            ["duality gap", "", "", *[f"{exact[n]['gap']:.1e}" for n in solved]]],
           {1: ".2f", 2: ".3f", **{k + 3: ".3f" for k in range(len(solved))}})
glue("data_share_near", data_share[order[0]])
glue("data_share_far", data_share[order[-1]])
for name in solved:
    glue(f"exact_{name}_near", exact[name]["shares"][order[0]])
    glue(f"exact_{name}_far", exact[name]["shares"][order[-1]])
    glue(f"exact_{name}_mass", exact[name]["mass"])
    glue(f"exact_{name}_w2", exact[name]["w2"])

# %% [markdown]
# A note on the solver: `solve_uot` anneals a smoothed $c$-transform, and for `chi` a heavily smoothed round can end
# at a potential whose exact $c$-transform exceeds 2 at every source point, where the $\chi^2$ ratio $\max(1-v^c/2,0)$
# vanishes: the source marginal is then empty while the data's is not, and no coupling exists. The solver skips such
# a round and goes on with a sharper one (on a ring like this one at $\tau=0.3$ the first round does this;
# `tests/test_exact.py` holds such a case). The duality gap in the table above certifies the answer whatever path
# it took.
#
# Checks on the exact answers: the balanced plan gives each mode its data share; every unbalanced $\Psi$ gives the
# nearest mode more than its share and the farthest less, and its generated law is further from the data in $W_2$;
# `kl` gives the nearest mode the largest share of the three; `chi` and `softplus` give every mode nearly the same
# share (within 0.02), while the plan's mass is much smaller for `softplus` (below 0.6 times `chi`'s).

# %%
near, far_mode = order[0], order[-1]
if "linear" in solved:
    assert np.allclose(exact["linear"]["shares"], data_share, atol=1e-9)
for name in solved:
    if name == "linear":
        continue
    e = exact[name]
    assert 0 <= e["gap"] < 1e-5, (name, e["gap"])
    assert e["shares"][near] > data_share[near] and e["shares"][far_mode] < data_share[far_mode], (name, e["shares"])
    assert e["w2"] > 0.05, (name, e["w2"])
unbalanced = [n for n in ("kl", "chi", "softplus") if n in solved]
if "kl" in solved:
    assert all(exact["kl"]["shares"][near] > exact[n]["shares"][near] for n in unbalanced if n != "kl")
if "chi" in solved and "softplus" in solved:
    assert np.max(np.abs(exact["chi"]["shares"] - exact["softplus"]["shares"])) < 0.02
    assert exact["softplus"]["mass"] < 0.6 * exact["chi"]["mass"]

# %% [markdown]
# ## The networks
#
# One run of the toy trainer per conjugate, all with the same data, seed and settings: the reference's networks, batch
# 256, Adam with learning rate `lr` ($3\cdot10^{-4}$), no regulariser, and **one** potential step per map step
# (`potential_steps`), as in the image trainer, for `epochs` epochs ({glue:text}`epochs` here) of the
# {glue:text}`num_data:,` points ({glue:text}`iterations:,` iterations). This schedule is a choice, not the toy
# reference's, which takes five potential steps per map step at learning rate $10^{-5}$ (and $10^{-4}$ in its outlier
# run). The page trains `kl` once more with five potential steps at $10^{-4}$ (the parameters
# `reference_potential_steps` and `reference_lr`) for the same number of epochs, so that the two schedules can be
# compared on this problem. Only $\Psi$ differs between the four main runs.
#
# A generated sample is counted in the mode whose centre is nearest, as the exact answer's points are; a sample
# further than `mode_radius` from every centre is also counted as *off the modes*, a measure of sharpness. $W_2$ is
# computed by `ot.emd2` between `n_w2` generated samples and as many data points (`uotm.exact.w2_squared`); between
# two samples of the data itself it is not zero, and the line above the table gives that floor. The potential's own
# estimate of the mass of the plan is the mean of $(\Psi^*)'(-v(y))$ over the data.

# %% tags=["hide-input"]
def toy_config(name: str, **changes) -> ToyConfig:
    settings = dict(source="noise", target=f"npy:{workdir / 'shifted_ring.npy'}", psi1=name, psi2=name, tau=tau,
                    reg_lambda=reg_lambda, epochs=epochs, lr_map=lr, lr_potential=lr, potential_steps=potential_steps,
                    num_data=num_data, seed=seed, log_every=10)
    return ToyConfig(**{**settings, **changes})


def measure(run, name: str, rng: np.random.Generator) -> dict:
    """Mode shares, share off the modes, W2 to the data and the potential's mass estimate of a trained run."""
    gen = run.transported.astype(np.float64)
    dist_to_centre = np.sqrt(((gen[:, None, :] - centres[None]) ** 2).sum(axis=-1))
    nearest = np.argmin(dist_to_centre, axis=1)
    on_mode = dist_to_centre[np.arange(len(gen)), nearest] < mode_radius
    with torch.no_grad():
        ratio = get_psi(name).ratio(-run.potential(torch.as_tensor(data)).double()).numpy()
    return dict(
        shares=np.bincount(nearest, minlength=8) / len(gen), off=float(1 - on_mode.mean()),
        w2=float(np.sqrt(w2_squared(gen[rng.choice(len(gen), n_w2, replace=False)], data_a))),
        mass=float(ratio.mean()), ratio_by_mode=np.array([ratio[data_mode == k].mean() for k in range(8)]),
        loss_peak=max(max(abs(m["potential_loss"]), abs(m["map_loss"])) for m in run.metrics))


# %%
runs = {}
for name in psis:
    runs[name] = train_toy(toy_config(name), progress=False)
reference_run = train_toy(
    toy_config("kl", potential_steps=reference_potential_steps, lr_map=reference_lr, lr_potential=reference_lr),
    progress=False)

# %% tags=["hide-input"]
glue("tau", tau)
glue("epochs", epochs)
glue("num_data", num_data)
glue("iterations", runs[psis[0]].metrics[-1]["step"] if psis else 0)
run_rows = [[f"`{name}`", run.metrics[-1]["step"], run.seconds, run.metrics[-1]["potential_loss"],
             run.metrics[-1]["map_loss"]] for name, run in runs.items()]
run_rows.append([f"`kl`, reference schedule ({reference_potential_steps} potential steps, lr {reference_lr:g})",
                 reference_run.metrics[-1]["step"], reference_run.seconds,
                 reference_run.metrics[-1]["potential_loss"], reference_run.metrics[-1]["map_loss"]])
show_table(["run", "iterations", "time (s)", "final potential loss", "final map loss"], run_rows,
           {1: ",", 2: ".0f", 3: ".3g", 4: ".3g"})

sub = np.random.default_rng(seed + 1)
data_a = data[sub.choice(len(data), n_w2, replace=False)]
data_b = data[sub.choice(len(data), n_w2, replace=False)]
w2_floor = glue("w2_floor", np.sqrt(w2_squared(data_a, data_b)))
rows = {name: measure(run, name, sub) for name, run in runs.items()}
reference = measure(reference_run, "kl", sub)
print(f"W2 between two samples of {n_w2} data points: {w2_floor:.3f}. Each network, with the exact answer in "
      "parentheses:")


def net_exact(net, exact_value, spec=".3f"):
    return f"{net:{spec}} ({exact_value:{spec}})"


show_table(["network", "$W_2$ to the data", "off the modes", "mass", "nearest mode's share",
            "farthest mode's share"],
           [[f"`{label}`", net_exact(r["w2"], e["w2"]), r["off"], net_exact(r["mass"], e["mass"]),
             net_exact(r["shares"][near], e["shares"][near]), net_exact(r["shares"][far_mode], e["shares"][far_mode])]
            for label, r, e in [*((n, rows[n], exact[n]) for n in psis), ("kl, ref.", reference, exact.get("kl"))]
            if e is not None],
           {2: ".1%"})
for name, r in rows.items():
    glue(f"net_{name}_w2", r["w2"])
    glue(f"net_{name}_mass", r["mass"])
    glue(f"net_{name}_near", r["shares"][near])
    glue(f"net_{name}_off", r["off"])
    glue(f"net_{name}_loss_peak", r["loss_peak"])
glue("reference_off", reference["off"])
glue("reference_near", reference["shares"][near])
glue("reference_w2", reference["w2"])
glue("reference_mass", reference["mass"])
unbalanced_off = [rows[n]["off"] for n in rows if n != "linear"]
if unbalanced_off:
    glue("unbalanced_off_min", min(unbalanced_off))
    glue("unbalanced_off_max", max(unbalanced_off))

# %% [markdown]
# The claims about these networks, asserted at the default parameters; the bounds are what holds at seeds 0, 1 and
# 2 (`python ci/seeds.py 06_choosing_psi`), with some margin. Each unbalanced network reproduces its exact answer:
# the $W_2$ distance of its generated law to the data within 0.4 of the exact one, the potential's mass estimate
# within 0.1 of the plan's mass, its density ratio within a factor $e^{0.6}\approx1.8$ of the exact one on every
# mode, and, for `kl` and `chi`, the share of the nearest mode within 0.1 (the `softplus` network's share of that mode
# does not stay within 0.1 of the exact one across the three seeds, and is not claimed). The balanced network does
# not reproduce its own exact answer, the data: its $W_2$ distance to the data exceeds the data's sampling floor by
# more than 1 and every unbalanced network's by more than 0.5, more than 60% of its samples lie off the modes, and
# its logged losses reach more than 500 in absolute value while the unbalanced runs' stay below 5. And after the same
# number of epochs, the `kl` network trained with the reference's schedule misses the exact share of the nearest mode
# by more than 0.15.

# %%
near_bounds = {"kl": 0.1, "chi": 0.1}  # softplus: not claimed (see above)
for name in psis:
    if name == "linear":
        continue
    r, e = rows[name], exact[name]
    claims.below(f"{name}_w2_error", abs(r["w2"] - e["w2"]), 0.4,
                 f"the {name} network's W2 to the data is within 0.4 of the exact answer's")
    claims.below(f"{name}_mass_error", abs(r["mass"] - e["mass"]), 0.1,
                 f"the {name} potential's mass estimate is within 0.1 of the exact plan's mass")
    exact_ratio = np.bincount(y_mode, weights=e["plan"].target_marginal, minlength=8) / np.bincount(
        y_mode, weights=b, minlength=8)
    with np.errstate(divide="ignore"):
        ratio_error = float(np.max(np.abs(np.log(r["ratio_by_mode"] / exact_ratio))))
    claims.below(f"{name}_ratio_error", ratio_error, 0.6,
                 f"the {name} potential's density ratio is within a factor e^0.6 of the exact one on every mode")
    near_error = abs(r["shares"][near] - e["shares"][near])
    if name in near_bounds:
        claims.below(f"{name}_near_error", near_error, near_bounds[name],
                     f"the {name} network's share of the nearest mode is within {near_bounds[name]} of the exact one")
    else:
        glue(f"{name}_near_error", near_error)
unbalanced_runs = [n for n in rows if n != "linear"]
if "linear" in rows and unbalanced_runs:
    claims.above("linear_w2_over_floor", rows["linear"]["w2"] - w2_floor, 1.0,
                 "the balanced network's W2 to the data exceeds the data's own sampling floor by more than 1")
    claims.above("linear_w2_excess", rows["linear"]["w2"] - max(rows[n]["w2"] for n in unbalanced_runs), 0.5,
                 "the balanced network's W2 to the data exceeds every unbalanced network's by more than 0.5")
    claims.above("linear_off", rows["linear"]["off"], 0.6, "more than 60% of the balanced network's samples lie off "
                 "the modes")
    claims.above("linear_loss_peak", rows["linear"]["loss_peak"], 500.0,
                 "the balanced run's logged losses reach 500 in absolute value")
    claims.below("unbalanced_loss_peak", max(rows[n]["loss_peak"] for n in unbalanced_runs), 5.0,
                 "the unbalanced runs' logged losses stay below 5 in absolute value")
if "kl" in rows:
    claims.above("reference_near_error", abs(reference["shares"][near] - exact["kl"]["shares"][near]), 0.15,
                 "with the reference's schedule, the kl network's share of the nearest mode is more than 0.15 away "
                 "from the exact one after the same number of epochs")
    glue("reference_time_ratio", reference_run.seconds / runs["kl"].seconds)

# %% tags=["hide-input"]
show_table(["claim", "measured", "bound", "holds"],
           [[f"`{c.name}`", c.value, f"{c.relation} {c.bound:g}", "yes" if c.holds else "**no**"] for c in claims.made],
           {1: ".3f"})

# %% [markdown]
# The share of each mode, against the mode's distance from the source: exact answers (lines), networks (markers),
# the data (grey). The lower panel gives the learned density ratio $(\Psi^*)'(-v(y))$ averaged over each mode's data,
# beside the exact ratio $d\tilde\nu/d\nu$.

# %% tags=["hide-input"]
colors = dict(zip(psis, ["tab:blue", "tab:orange", "tab:green", "k"]))
fig, axes = plt.subplots(2, 1, figsize=(8.5, 9), sharex=True)
ax = axes[0]
ax.plot(distance[order], data_share[order], "s", color="0.6", ms=9, label="data")
for name in psis:
    ax.plot(distance[order], exact[name]["shares"][order], "-", color=colors[name], label=f"exact, {name}")
    ax.plot(distance[order], rows[name]["shares"][order], "o", mfc="none", color=colors[name], ms=7,
            label=f"network, {name}")
off_scale = [n for n in psis if np.nanmax(rows[n]["shares"]) > 0.5]
for name in off_scale:  # a collapsed run would squash the others: mark it instead
    k = int(np.argmax(rows[name]["shares"]))
    ax.annotate(f"network, {name}: {rows[name]['shares'][k]:.0%} here", (distance[k], 0.5),
                xytext=(-20 if distance[k] > 2 else 20, -25), ha="right" if distance[k] > 2 else "left",
                textcoords="offset points", arrowprops=dict(arrowstyle="->"))
ax.set_ylim(0, 0.5)
ax.set_ylabel("share of generated samples\nin the mode")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
ax = axes[1]
for name in psis:
    pl = exact[name]["plan"]
    if pl is None:
        continue
    exact_ratio = np.bincount(y_mode, weights=pl.target_marginal, minlength=8) / np.bincount(
        y_mode, weights=b, minlength=8)
    ax.plot(distance[order], exact_ratio[order], "-", color=colors[name], label=f"exact, {name}")
    ax.plot(distance[order], rows[name]["ratio_by_mode"][order], "o", mfc="none", color=colors[name], ms=7,
            label=f"learned, {name}")
ax.set_yscale("log")
ax.set_xlabel("distance of the mode's centre from the source's centre")
ax.set_ylabel("density ratio $d\\tilde\\nu/d\\nu$\non the mode")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
fig.tight_layout()
plt.show()

# %% [markdown]
# Samples: data (orange) and the network's (blue) for each conjugate, with the mode centres numbered by distance
# from the source's centre (0 nearest).

# %% tags=["hide-input"]
ncols = min(2, len(psis))
nrows = -(-len(psis) // ncols)
fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 4.3 * nrows), squeeze=False)
for ax in axes.ravel()[len(psis):]:
    ax.set_axis_off()
for ax, name in zip(axes.ravel(), psis):
    run = runs[name]
    ax.scatter(data[:, 0], data[:, 1], s=2, alpha=0.25, color="tab:orange", label="data")
    ax.scatter(run.transported[:, 0], run.transported[:, 1], s=2, alpha=0.25, color="tab:blue", label="generated")
    for rank, k in enumerate(order):
        ax.annotate(str(rank), centres[k], xytext=(6, 6), textcoords="offset points")
    ax.set_title(f"{name}: W2 {rows[name]['w2']:.2f} (exact {exact[name]['w2']:.2f})")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(markerscale=4, loc="lower left")
fig.tight_layout()
plt.show()

# %% [markdown]
# Training curves: the potential's and the map's losses (logged every 10 iterations).

# %% tags=["hide-input"]
ncols = min(2, len(psis))
nrows = -(-len(psis) // ncols)
fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 3.3 * nrows), squeeze=False)
for ax in axes.ravel()[len(psis):]:
    ax.set_axis_off()
for ax, name in zip(axes.ravel(), psis):
    plot_losses(ax, runs[name].metrics)
    ax.set_title(name)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What the numbers say
#
# In this run ($\tau=$ {glue:text}`tau` and {glue:text}`epochs` epochs, the parameters `tau` and `epochs`; the seed
# is in the banner at the top):
#
# - **The exact answers differ, and as the one-pair table predicts.** The mode at the source's centre holds
#   {glue:text}`data_share_near:.0%` of the data; `kl` gives it {glue:text}`exact_kl_near:.0%` of the generated
#   samples, `chi` {glue:text}`exact_chi_near:.0%` and `softplus` {glue:text}`exact_softplus_near:.0%`. The farthest
#   mode ({glue:text}`data_share_far:.0%` of the data) gets {glue:text}`exact_kl_far:.1%`,
#   {glue:text}`exact_chi_far:.1%` and {glue:text}`exact_softplus_far:.1%`. `chi` and `softplus` give almost the same
#   *shares* (checked above: within 0.02 on every mode), but the plan's mass is {glue:text}`exact_chi_mass:.2f` for
#   `chi` and {glue:text}`exact_softplus_mass:.2f` for `softplus`: what softplus halves is the mass, not the shape. In
#   $W_2$ the exact generated laws are {glue:text}`exact_kl_w2:.2f` (`kl`), {glue:text}`exact_chi_w2:.2f` (`chi`)
#   and {glue:text}`exact_softplus_w2:.2f` (`softplus`) from the data; that distance is the reweighting Theorem 3.3
#   allows, not an error.
# - **The unbalanced networks find their exact answers, within the claims' bounds.** With one potential step per map
#   step, the `kl`, `chi` and `softplus` networks are at $W_2$ distances {glue:text}`net_kl_w2:.2f`,
#   {glue:text}`net_chi_w2:.2f` and {glue:text}`net_softplus_w2:.2f` from the data, their potentials estimate the
#   plan's mass as {glue:text}`net_kl_mass:.2f`, {glue:text}`net_chi_mass:.2f` and {glue:text}`net_softplus_mass:.2f`,
#   and they give the nearest mode {glue:text}`net_kl_near:.0%`, {glue:text}`net_chi_near:.0%` and
#   {glue:text}`net_softplus_near:.0%` of their samples (the exact values are in the first bullet). Between
#   {glue:text}`unbalanced_off_min:.0%` and {glue:text}`unbalanced_off_max:.0%` of their samples lie off the modes:
#   this budget makes the modes' shares right before it makes the modes sharp, and how sharp they get varies from seed
#   to seed.
# - **The balanced network does not find its answer.** Its exact answer is the data itself, yet its samples are at $W_2$
#   distance {glue:text}`net_linear_w2:.2f` from the data (the sampling floor is {glue:text}`w2_floor:.2f`),
#   {glue:text}`linear_off:.0%` of them lie off the modes, and its logged losses reach
#   {glue:text}`linear_loss_peak:,.0f` in absolute value, against at most {glue:text}`unbalanced_loss_peak:.2f` for the
#   unbalanced runs. Where its samples go varies from seed to seed (in this run {glue:text}`net_linear_near:.0%` of them
#   fall in the nearest mode). The balanced potential's loss is linear in $v$, so nothing bounds the potential where the
#   map has not yet arrived, while a strictly convex $\Psi^*$ penalises large potentials. This is the stability argument
#   of the paper in its simplest form; chapter 5 saw the same game misbehave in 1-D even with the regulariser.
# - **The reference's schedule has not converged after the same number of epochs.** Trained with five potential steps
#   per map step at learning rate $10^{-4}$, the `kl` network gives the nearest mode {glue:text}`reference_near:.0%` of
#   its samples (exact: {glue:text}`exact_kl_near:.0%`), and its potential estimates the mass as
#   {glue:text}`reference_mass:.2f` (exact: {glue:text}`exact_kl_mass:.2f`); its run took
#   {glue:text}`reference_time_ratio:.1f` times as long as the page's `kl` run. Which way it misses varies with the seed
#   (at seeds 0–2, measured by `python ci/seeds.py 06_choosing_psi`, the nearest mode was nearly empty at one seed and
#   held every sample at another), so the page claims only that it misses. That is a statement about this budget: the
#   reference's schedule may well get there with more epochs.
#
# On this problem the choice among the three unbalanced conjugates is a choice of target, not of trainability: the
# three networks meet the same claims, and they differ in how strongly they favour the modes that are cheap to reach.
# `kl` is the most selective (checked on the exact answers above), `chi` the only one that can drop a mode completely
# (at larger $\tau$), `softplus` the only one whose density ratio never exceeds 1: it removes mass everywhere, and
# more where transport is expensive.
#
# ## What to try
#
# - Mix the conjugates, as the paper's ablation does (KL on one side, $\chi^2$ on the other): `ToyConfig(psi1="kl",
#   psi2="chi")` and `solve_uot(a, b, cost, "kl", "chi")`.
# - Vary `tau`: every unbalanced column of the exact table moves towards the data's shares as $\tau\to0$
#   (chapter 4), and `chi` starts to drop the far modes entirely once $\tau d^2$ passes 4.
# - Give the reference's schedule more epochs, or the same wall time as the page's schedule (`epochs` and the
#   parameters `reference_potential_steps`, `reference_lr`), and compare its mode shares with the exact lines.
