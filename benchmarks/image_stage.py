"""Time the image half: generation, each image check and edit, per 512x512 image.

    .venv/bin/python benchmarks/image_stage.py                     # every bench_* below, a table
    .venv/bin/python benchmarks/image_stage.py --only clip --json  # one section, machine-readable
    .venv/bin/python benchmarks/image_stage.py --clip-model ViT-L-14 --device cuda

Each section is a function ``bench_NAME(args) -> list[dict]`` returning rows with
``name``, ``ms_p50``, ``ms_p95`` (milliseconds per image unless ``unit`` says
otherwise), ``runs``, ``load_ms`` (first build, not in the timings), ``target_ms``
(or None) and ``note``; ``main`` runs every such function in this file, in order.
To add a section, write another ``bench_*`` function. One CPU thread unless
``--device`` names an accelerator; each timing follows one warm-up call.

- generation: the ``diffusers`` backend on the tiny random pipeline (noise, no
  weights) at 512x512, per image, alone and in a batch of 4. Its networks are tiny
  (latents are 1/8 of the image side, as in Stable Diffusion), so this measures the
  pipeline's fixed costs at 512x512, not a real model's. ``--generation sd15``
  instead builds Stable Diffusion 1.5's architecture (860M-parameter UNet, its VAE
  and CLIP ViT-L/14 text encoder) with random weights, saves it, and loads the
  folder through the backend (``from_pretrained``, float16 on a GPU): the time of a
  real SD 1.5 model, whose weights cannot be had offline. Meant for a GPU
  (``--device cuda --steps 25``); on a CPU a step takes seconds.
- clip: the ``clip-concepts`` check with the default policy's concepts on a
  randomly initialised open_clip backbone of the named architecture (``ViT-B-32``
  by default; Ethical-Lens uses ``ViT-L-14``): the weights' values do not change
  the time, and no weights are downloaded. Per image, alone and in a batch of 4.
- nudenet: the ``nudenet`` check with the ONNX detector shipped in the nudenet
  package (320n), one ONNX thread, per image, alone and in a batch of 4.
- edit: the ``region`` editor on a face-sized box (blur, pixelate, black out),
  on the whole image, and with a CLIPSeg mask from a randomly initialised model of
  CLIPSeg's real architecture (ViT-B/16 at 352 px; one vision pass per prompt).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before any numeric library loads
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

SIZE = 512
TARGETS_MS: dict[str, float] = {}  # default image checks: <= 150 ms per image on one CPU core


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(call: Callable[[], Any], runs: int, per: int = 1) -> dict[str, float]:
    """Milliseconds per item (``per`` items a call) over ``runs`` calls, after one warm-up."""
    call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000 / per)
    return {"ms_p50": round(percentile(times, 0.5), 2), "ms_p95": round(percentile(times, 0.95), 2), "runs": runs}


def sample_images(n: int = 4) -> list[Any]:
    """Real photos from scikit-image at 512x512 (astronaut has a face; the others none)."""
    from PIL import Image
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    return [Image.fromarray(photos[i % len(photos)]).convert("RGB").resize((SIZE, SIZE)) for i in range(n)]


def _torch_setup(args: argparse.Namespace) -> None:
    import torch

    if args.device == "cpu":
        torch.set_num_threads(1)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def bench_generation(args: argparse.Namespace) -> list[dict]:
    """The diffusers backend, tiny random pipeline, 512x512."""
    from elens.plugins import default_registry
    from elens.policy import load_policy

    _torch_setup(args)
    os.environ.setdefault("ELENS_CACHE", tempfile.mkdtemp(prefix="elens-bench-"))
    policy = load_policy("builtin:default")
    model, label, build_ms = "tiny-random", "tiny", 0.0
    if args.generation == "sd15":
        start = time.perf_counter()
        model, label = _random_sd15(tempfile.mkdtemp(prefix="elens-bench-sd15-"), args.device), "SD 1.5 size"
        build_ms = (time.perf_counter() - start) * 1000
    options = {"model": model, "steps": args.steps, "width": SIZE, "height": SIZE, "device": args.device}
    start = time.perf_counter()
    backend, _ = default_registry().build("backend", ("pipeline", "backend"),
                                          {"plugin": "diffusers", "options": options}, policy)
    load_ms = (time.perf_counter() - start) * 1000

    def run(n: int) -> Callable[[], Any]:
        def call() -> None:
            backend.generate(["a photo of a cat"] * n, list(range(n)), negative_prompt="blurry")
            _sync(args.device)
        return call

    dtype = str(backend.pipe.unet.dtype).replace("torch.", "")
    note = f"random {label} pipeline, {args.steps} steps, {dtype}, {args.device}"
    if build_ms:
        note += f" (built and saved in {build_ms / 1000:.0f} s, not counted)"
    rows = [
        {"name": f"generate ({label}, 1/call)", **timed(run(1), args.runs), "load_ms": round(load_ms), "note": note},
        {"name": f"generate ({label}, 4/call)", **timed(run(4), max(1, args.runs // 2), per=4), "load_ms": None,
         "note": note},
    ]
    if model != "tiny-random":
        shutil.rmtree(Path(model).parent, ignore_errors=True)  # gigabytes of random weights
    return rows


def _random_sd15(folder: str, device: str) -> str:
    """Stable Diffusion 1.5's architecture with random weights, saved to ``folder`` (float16 on a GPU).

    The configs are SD 1.5's (runwayml/stable-diffusion-v1-5): its UNet, its VAE and
    CLIP ViT-L/14's text encoder; tokenizer and scheduler are the tiny pipeline's.
    """
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from elens_diffusers.tiny import save_pipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    on = device if device.startswith("cuda") else "cpu"
    with torch.device(on):  # random init of 1B parameters is seconds on a GPU, a minute on one core
        torch.manual_seed(0)
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            latent_channels=4, sample_size=512)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
            max_position_embeddings=77, vocab_size=49408, projection_dim=768, hidden_act="quick_gelu"))
    if on != "cpu":
        unet, vae, text_encoder = (m.to(torch.float16) for m in (unet, vae, text_encoder))
    return str(save_pipeline(Path(folder) / "pipeline", unet, vae, text_encoder))


def bench_clip(args: argparse.Namespace) -> list[dict]:
    """The clip-concepts check with the default policy's concepts, random backbone of a real architecture."""
    from elens.policy import load_policy
    from elens_clip.plugin import ClipConceptCheck

    _torch_setup(args)
    policy = load_policy("builtin:default")
    start = time.perf_counter()
    check = ClipConceptCheck({"model": args.clip_model, "pretrained": None, "device": args.device}, policy)
    load_ms = (time.perf_counter() - start) * 1000
    images = sample_images(4)
    contexts = [None] * len(images)

    def run(n: int) -> Callable[[], Any]:
        def call() -> None:
            check.check(images[:n], contexts[:n])
            _sync(args.device)
        return call

    note = f"{args.clip_model}, {len(check.texts)} concepts / {len(check.categories)} categories, {args.device}"
    target = None  # clip-concepts is opt-in (not in the default policy): the 150 ms target is for default checks
    return [
        {"name": "clip-concepts (1/call)", **timed(run(1), args.runs), "load_ms": round(load_ms),
         "target_ms": target, "note": note},
        {"name": "clip-concepts (4/call)", **timed(run(4), max(1, args.runs // 2), per=4), "load_ms": None,
         "target_ms": target, "note": note},
    ]


def bench_nudenet(args: argparse.Namespace) -> list[dict]:
    """The nudenet check (the ONNX detector shipped in the nudenet package), one ONNX thread."""
    from elens.policy import load_policy
    from elens_nudenet.plugin import NudeNetCheck

    policy = load_policy("builtin:default")
    start = time.perf_counter()
    check = NudeNetCheck({"threads": 1}, policy)
    load_ms = (time.perf_counter() - start) * 1000
    images = sample_images(4)
    contexts = [None] * len(images)

    def run(n: int) -> Callable[[], Any]:
        return lambda: check.check(images[:n], contexts[:n])

    note = "320n.onnx, cpu, 1 thread (input resized to 320)"
    target = TARGETS_MS.get("nudenet", 150.0)
    return [
        {"name": "nudenet (1/call)", **timed(run(1), args.runs), "load_ms": round(load_ms), "target_ms": target,
         "note": note},
        {"name": "nudenet (4/call)", **timed(run(4), max(1, args.runs // 2), per=4), "load_ms": None,
         "target_ms": target, "note": note},
    ]


def bench_edit(args: argparse.Namespace) -> list[dict]:
    """The region editor: a face box (blur, pixelate, black out), the whole image, and a CLIPSeg mask.

    The CLIPSeg row uses a randomly initialised model of CLIPSeg's real
    architecture (ViT-B/16, 352-pixel input, as CIDAS/clipseg-rd64-refined):
    weights do not change the time, and none are downloaded.
    """
    from elens import Finding, Region
    from elens.policy import load_policy
    from elens_edit.plugin import RegionEditor

    _torch_setup(args)
    policy = load_policy("builtin:default")
    image = sample_images(1)[0]
    face = Region(173, 82, 275, 180, "FACE_FEMALE")  # nudenet's box for the astronaut's face

    def finding(region: Any) -> Any:
        return Finding("nudenet", "0", "image", "nudity", 0.9, 0.6, "blur", True, region=region)

    rows = []
    for name, options, region in [
        ("edit blur (face box)", {"method": "blur"}, face),
        ("edit pixelate (face box)", {"method": "pixelate"}, face),
        ("edit blackout (face box)", {"method": "blackout"}, face),
        ("edit blur (whole image)", {"method": "blur"}, None),
    ]:
        editor = RegionEditor(options, policy)
        rows.append({"name": name, **timed(lambda e=editor, r=region: e.edit(image, finding(r)), args.runs),
                     "load_ms": None, "note": "padding 0.15, feather 4, strength 0.5"})
    with tempfile.TemporaryDirectory(prefix="elens-bench-clipseg-") as folder:
        start = time.perf_counter()
        _random_clipseg(folder)
        editor = RegionEditor({"method": "blur", "clipseg": folder}, policy)
        load_ms = (time.perf_counter() - start) * 1000
        prompts = editor.prompts_for("nudity")
        rows.append({"name": "edit blur (CLIPSeg mask)", **timed(lambda: editor.edit(image, finding(None)),
                                                                 max(1, args.runs // 2)),
                     "load_ms": round(load_ms),
                     "note": f"random ViT-B/16 CLIPSeg, {len(prompts)} prompts (nudity concepts), cpu"})
    return rows


def _random_clipseg(folder: str) -> None:
    """A CLIPSeg of the real architecture with random weights and a stand-in tokenizer, saved to ``folder``."""
    import json
    import pathlib

    import torch
    from transformers import (CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor, CLIPTokenizer,
                              ViTImageProcessor)

    torch.manual_seed(0)
    model = CLIPSegForImageSegmentation(CLIPSegConfig(reduce_dim=64)).eval()
    path = pathlib.Path(folder)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for token in letters + [c + "</w>" for c in letters]:
        vocab.setdefault(token, len(vocab))
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), model_max_length=77)
    image_processor = ViTImageProcessor(size={"height": 352, "width": 352},
                                        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    model.save_pretrained(folder)
    CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def benches() -> dict[str, Callable[[argparse.Namespace], list[dict]]]:
    """Every ``bench_*`` function of this module, in the order they are written."""
    module = sys.modules[__name__]
    found = [(fn.__code__.co_firstlineno, name[len("bench_"):], fn)
             for name, fn in inspect.getmembers(module, inspect.isfunction) if name.startswith("bench_")]
    return {name: fn for _, name, fn in sorted(found)}


def table(rows: list[dict]) -> str:
    def cell(value: Any) -> str:
        return "-" if value is None else str(value)

    header = ("section", "name", "ms p50", "ms p95", "runs", "load ms", "target", "note")
    keys = ("section", "name", "ms_p50", "ms_p95", "runs", "load_ms", "target_ms", "note")
    lines = [header] + [tuple(cell(row.get(k)) for k in keys) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[-1] for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(benches()), help="run these sections only")
    parser.add_argument("--runs", type=int, default=10, help="timed calls per row (after a warm-up)")
    parser.add_argument("--device", default="cpu", help="cpu (one thread), cuda, mps")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps for generation")
    parser.add_argument("--generation", default="tiny", choices=["tiny", "sd15"],
                        help="tiny random pipeline, or SD 1.5's architecture with random weights")
    parser.add_argument("--clip-model", default="ViT-B-32", help="open_clip architecture for the clip section")
    parser.add_argument("--json", action="store_true", help="one JSON object: {rows: [...], settings: {...}}")
    args = parser.parse_args(argv)
    from elens._log import configure

    configure()  # diagnostic logs (e.g. "random weights" warnings) to stderr, never into --json
    rows: list[dict] = []
    for name, bench in benches().items():
        if args.only and name not in args.only:
            continue
        try:
            rows += [{"section": name, "target_ms": None, **row} for row in bench(args)]
        except Exception as exc:  # a section that cannot run (missing plugin) is reported, not fatal
            rows.append({"section": name, "name": "(failed)", "note": f"{type(exc).__name__}: {exc}"[:200]})
    settings = {k: v for k, v in vars(args).items() if k != "json"}
    if args.json:
        print(json.dumps({"settings": settings, "rows": rows}, indent=2))
    else:
        print(table(rows))
    return 1 if any(r.get("name") == "(failed)" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
