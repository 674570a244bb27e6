"""Image-space diagnostics of the latents suite: decoded sample grids per sampler, class
coverage, and the diffusion-map picture of each latent target.

Grids are drawn from the saved final particles (``particles/*.npz``) of the first seed and
first init scheme of every (target, sampler); class coverage is scored per run by the
automatic metric ``class_tv`` (``metrics/class_coverage.py``) and summarised here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.diagnostics import DIAGNOSTICS
from benchmarks.execution.data import prepare
from benchmarks.execution.provenance import original_command, produced_by
from benchmarks.execution.store import atomic_write_text

#: decoded particles drawn per grid (fewer when a run has fewer particles)
N_GRID = 64


def header_lines(latent: list[dict[str, Any]]) -> list[str]:
    """Title and caption of ``images.md``: which seed and init, and how many of how many
    decoded particles each grid shows (the count the grids really draw)."""
    first_rep = min(r["rep"] for r in latent)
    n_particles = min(int(r["n_particles"]) for r in latent)
    return [
        "# Decoded samples (latents suite)",
        "",
        f"First seed ({first_rep}) and init `{latent[0]['init']}`; the first "
        f"{min(N_GRID, n_particles)} of {n_particles} decoded particles per sampler. "
        "`class TV` = total variation between the class histogram of the decoded particles "
        "(classifier trained on real images) and the real class frequencies, mean over seeds.",
        "",
    ]


@DIAGNOSTICS.register("latents")
def write_latent_images(out_dir: Path, rows: list[dict[str, Any]]) -> list[Path]:
    """Decoded grids (``grids/<target>__<sampler>.png``), diffusion-map plots and
    ``images.md`` for every latent target with saved particles. Returns the written files."""
    from datasets.images.diagnostics import diffusion_map_plot

    written: list[Path] = []
    latent = [r for r in rows if r.get("family") == "latents" and r.get("particles_file")]
    if not latent:
        return written
    grid_dir = out_dir / "grids"
    grid_dir.mkdir(parents=True, exist_ok=True)
    first_rep = min(r["rep"] for r in latent)
    first_init = latent[0]["init"]
    lines = header_lines(latent)
    command = original_command(out_dir)
    commits = ", ".join(sorted({str(r["commit"]) for r in latent if r.get("commit")}))
    producer = command or "python -m benchmarks report"
    line = produced_by(producer, commits) if commits else f"Produced by: `{producer}`"
    lines[1:1] = ["", line + " (grids from its rows)"]
    tv: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r.get("metric") == "class_tv" and r.get("status") == "ok":
            tv.setdefault((r["target"], r["sampler"]), []).append(float(r["value"]))
    for target_name in dict.fromkeys(r["target"] for r in latent):
        picked = {}
        for r in latent:
            if (
                r["target"] == target_name
                and r["rep"] == first_rep
                and r["init"] == first_init
                and r["metric"] == "sinkhorn"
            ):
                picked[r["sampler"]] = r
        if not picked:
            continue
        base_target = None
        lines += [f"## {target_name}", ""]
        recorded = _data_source(next(iter(picked.values())))
        if recorded:
            lines += [f"Data: {recorded}.", ""]
        lines += ["| sampler | class TV | grid |", "|---|---|---|"]
        for sampler, r in picked.items():
            z = torch.from_numpy(np.load(out_dir / r["particles_file"])["particles"]).double()
            path = grid_dir / f"{target_name}__{sampler}.png"
            # particles are stored in the standardised space of their own run
            std_target = prepare(
                target_name,
                r["rep"],
                r["n_train"],
                r["n_reference"],
                r["n_particles"],
                (r["init"],),
                _suite_seed(r),
            ).target
            base_target = std_target.base
            rebuilt = base_target.info.get("data_source")
            if recorded and rebuilt != recorded:  # another autoencoder: its decoding is wrong
                lines.append(
                    f"| - | - | not drawn: the rows were made from {recorded} but this process "
                    f"builds {target_name} from {rebuilt} (use the run's --data-root) |"
                )
                base_target = None
                break
            base_target.image_report(std_target.to_original(z), grid_path=path, n_grid=N_GRID)
            vals = tv.get((target_name, sampler), [])
            cell = f"{np.mean(vals):.3f}" if vals else "-"
            lines.append(f"| {sampler} | {cell} | ![{sampler}](grids/{path.name}) |")
            written.append(path)
        if base_target is None:
            continue
        dm_path = out_dir / f"diffusion_map_{target_name}.png"
        diffusion_map_plot(
            base_target.pool("train"),
            base_target.pool_labels["train"],
            dm_path,
            title=f"{target_name}: diffusion-map coordinates of the latents",
        )
        written.append(dm_path)
        lines += ["", f"![diffusion map]({dm_path.name})", ""]
    md = out_dir / "images.md"
    atomic_write_text(md, "\n".join(lines) + "\n")
    written.append(md)
    return written


def _data_source(row: dict[str, Any]) -> str | None:
    """The ``data_source`` a row's ``target_info`` records (None for rows without one)."""
    return json.loads(row.get("target_info") or "{}").get("data_source")


def _suite_seed(row: dict[str, Any]) -> int:
    return int(json.loads(row["config_key"])["suite_seed"])
