"""The table and summary lines that benchmarks/run.py prints from its results dict."""
from __future__ import annotations


def throughput_table(res: dict):
    """The rich Table of images/s, ms/batch and parameters of each measurement."""
    from rich.table import Table
    ips, B = res["images_per_second"], res["batch_size"]
    t = Table(title=f"Throughput at batch {B}, {res['image_size']}x{res['image_size']}")
    for col in ("measurement", "images/s", "ms/batch", "params"):
        t.add_column(col, justify="left" if col == "measurement" else "right")
    t.add_row("encoder stage: full step (encoder_step)", f"{ips['encoder_step']:.1f}",
              f"{1000 * B / ips['encoder_step']:.0f}", "")
    t.add_row("GAN stage: full step (gan_step)", f"{ips['gan_step']:.1f}", f"{1000 * B / ips['gan_step']:.0f}", "")
    if "gan_step_at_gan_batch" in ips:
        GB = res["gan_batch_size"]
        t.add_row(f"GAN stage: full step at train.gan_batch_size {GB}", f"{ips['gan_step_at_gan_batch']:.1f}",
                  f"{1000 * GB / ips['gan_step_at_gan_batch']:.0f}", "")
    for name, n in res["networks"].items():
        t.add_row(f"  {name}: forward+backward (forward)",
                  f"{n['forward_backward_images_per_second']:.0f} ({n['forward_images_per_second']:.0f})",
                  f"{n['forward_backward_ms']:.1f} ({n['forward_ms']:.1f})", f"{n['params']:,}")
    t.add_row("data pipeline: crop/flip + captions", "", f"{res['data_ms_per_batch']:.2f}", "")
    ref = res["reference"]
    t.add_row("reference: GAN-CLS step incl. JPEG decode", f"{ref['images_per_second']:.1f}",
              f"{1000 * B / ref['images_per_second']:.0f}",
              f"G {ref['params']['generator']:,} / D {ref['params']['discriminator']:,}")
    t.add_row("  reference: compute only", f"{ref['compute_images_per_second']:.1f}", "", "")
    t.add_row("  reference: data (2 JPEG decodes/item)", "", f"{ref['data_ms_per_batch']:.1f}", "")
    return t


def print_report(res: dict) -> None:
    """The machine line, the throughput table, the ratio ours / reference, peak memory and the projection."""
    from rich.console import Console
    con = Console()
    if not con.is_terminal:  # piped / captured: wide enough for the table
        con = Console(width=120)
    m = res["machine"]
    con.print(f"[bold]{res['benchmark']}[/] ({res['mode']}) on {m['device_name']} — {m['cores']} cores, "
              f"{m['threads']} threads, torch {m['torch']}; load average at start {m['loadavg_start']}")
    con.print(throughput_table(res))
    pr, ref = res["projection"], res["reference"]
    con.print(f"[bold]ours / reference (full GAN step, images/s): {res['speedup_vs_reference']:.2f}x[/]  "
              f"(compute only: {ref['speedup_vs_reference_compute_only']:.2f}x)")
    cuda = res["cuda_max_allocated_mb"]
    con.print(f"peak memory: RSS {res['peak_rss_mb']:.0f} MB" + (f", CUDA max allocated {cuda:.0f} MB" if cuda else ""))
    con.print(f"[bold]projected wall time of {pr['config']}: {res['projected_default_minutes']:.1f} min[/] = "
              f"encoder {pr['encoder_training_s'] / 60:.1f} + GAN {pr['gan_training_s'] / 60:.1f} + validation "
              f"{pr['validation_s'] / 60:.1f} + checkpoints {pr['checkpoints_s'] / 60:.1f} + final eval "
              f"{pr['final_evaluation_s'] / 60:.1f} + data {pr['data_loading_s'] / 60:.1f} min "
              f"({pr['encoder_epochs']} epochs x {pr['steps_per_epoch']} steps of {pr['batch_size']} + "
              f"{pr['gan_epochs']} GAN x {pr['gan_steps_per_epoch']} of {pr['gan_batch_size']})")
    fl = res["flops"]
    t4 = fl["t4_projected_training_minutes"]
    con.print(f"FLOPs per image: encoder step {fl['encoder_step_per_image'] / 1e9:.2f} G, GAN step "
              f"{fl['gan_step_per_image'] / 1e9:.2f} G; whole training {fl['total_training'] / 1e15:.3f} PFLOP; "
              f"reached {fl['achieved_tflops']['gan_step']:.3f} TFLOP/s in the GAN step"
              + (f"; one T4, projected from this GPU by the peaks' ratio (a lower bound): {t4:.0f} min of training"
                 if t4 is not None else ""))
    con.print(f"benchmark took {res['benchmark_seconds']:.0f} s")
