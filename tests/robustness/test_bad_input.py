"""Bad input through the real command line: prompts, image files, policy files, output paths.

Each case ends in one line on stderr that names what is wrong and where, and exit
code 2, before any request is recorded or any file delivered; or in the safe
outcome docs/robustness.md describes (odd image modes are converted, not refused).
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from elens.audit import read_records, verify
from elens.cli import build_cli
from elens.errors import ElensError, InputError, PolicyError
from elens.images import sha256_image, write_new
from elens.policy import Policy, load_policy

POLICY = """\
elens: 1
metadata: {name: robustness, version: "1"}
pipeline:
  backend: {plugin: tiny}
limits: {max_image_pixels: 1000000}
"""


@pytest.fixture
def policy(tmp_path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def elens(*args, cwd=None):
    """Run the CLI in-process; ``stderr`` is what the user sees on the terminal."""
    old = os.getcwd()
    if cwd:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(build_cli(), [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


def assert_one_line_error(result, *needles, prefix="elens: error: "):
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr
    assert err.startswith(prefix) and err.count("\n") == 1, err
    for needle in needles:
        assert str(needle) in err, (needle, err)


# -- prompts --------------------------------------------------------------------------
BAD_PROMPTS = [
    ("empty", "", "the prompt is empty"),
    ("blank", " \t\n ", "the prompt is empty"),
    ("1 MB", "a cat " * (1024 * 1024 // 6 + 1), "limits.max_prompt_chars is 2000"),
    ("NUL", "a cat\x00 on a mat", "control characters (U+0000)"),
    ("ANSI escape", "a \x1b[31mred\x1b[0m cat", "control characters (U+001B)"),
    ("DEL", "a cat\x7f", "control characters (U+007F)"),
]


@pytest.mark.parametrize("command", ["check", "generate"])
@pytest.mark.parametrize("name,prompt,message", BAD_PROMPTS, ids=[p[0] for p in BAD_PROMPTS])
def test_bad_prompt_is_refused_before_the_request(tmp_path, policy, command, name, prompt, message):
    extra = ["--out", tmp_path / "out"] if command == "generate" else []
    result = elens(command, prompt, "-p", policy, "--audit-log", tmp_path / "a.jsonl", *extra)
    assert_one_line_error(result, message)
    assert not (tmp_path / "a.jsonl").exists()  # refused as input: no request, no record
    assert not (tmp_path / "out").exists()


def test_bad_prompt_given_with_images_is_refused(tmp_path, policy):
    image = tmp_path / "ok.png"
    Image.new("RGB", (32, 32), "white").save(image)
    result = elens("moderate", image, "--prompt", "x\x08y", "-p", policy, "--out", tmp_path / "out",
                   "--audit-log", tmp_path / "a.jsonl")
    assert_one_line_error(result, "control characters (U+0008)")
    assert not (tmp_path / "out").exists() and not (tmp_path / "a.jsonl").exists()


@pytest.mark.parametrize("command", ["check", "generate"])
def test_invalid_utf8_on_the_command_line(tmp_path, policy, command):
    """Bytes that are not UTF-8 reach Python as lone surrogates; they are refused, never half-recorded."""
    args = [sys.executable, "-m", "elens", command, b"a \xff\xfe cat", "-p", str(policy), "--audit-log", "a.jsonl"]
    if command == "generate":
        args += ["--out", "out"]
    proc = subprocess.run(args, capture_output=True, cwd=tmp_path, env={**os.environ, "LC_ALL": "C.UTF-8"})
    err = proc.stderr.decode("utf-8", "replace").splitlines()[-1]  # a plugin may have logged a warning first
    assert proc.returncode == 2 and err.startswith("elens: error: "), err
    assert "not valid Unicode" in err and "U+DCFF" in err
    log = tmp_path / "a.jsonl"
    assert not log.exists() or (verify(log).ok and list(read_records(log)) == [])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("redact", ["none", "hash"])
def test_lone_surrogate_through_the_python_api_is_refused_unrecorded(elens_lens, redact):
    lens = elens_lens(f"audit: {{redact_prompt: {redact}}}\n")
    with pytest.raises(ElensError, match=r"not valid Unicode.*U\+DCFF"):
        lens.check_prompt("a \udcff cat")
    assert not Path(lens.audit.path).exists() or list(read_records(lens.audit.path)) == []


def test_a_lone_surrogate_in_a_batch_file_fails_its_item_alone(tmp_path, policy):
    """JSON may spell a lone surrogate (\\ud800) in perfectly valid UTF-8; that item is invalid, the rest runs."""
    source = tmp_path / "prompts.jsonl"
    source.write_text('{"prompt": "a cat"}\n{"prompt": "a \\ud800 cat"}\n{"prompt": "a dog"}\n')
    result = elens("batch", source, "--check-only", "-p", policy, "--out", tmp_path / "out",
                   "--audit-log", tmp_path / "a.jsonl")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [line["status"] for line in lines] == ["pass", "invalid", "pass"]
    assert "not valid Unicode" in lines[1]["error"] and verify(tmp_path / "a.jsonl").ok


def test_a_pipe_given_as_an_image_is_refused_not_read(tmp_path, policy):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    result = elens("moderate", fifo, "-p", policy, "--out", tmp_path / "out")
    assert_one_line_error(result, f"{fifo}: not a regular file")


def test_invalid_utf8_in_a_policy_file_names_the_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(POLICY.encode().replace(b"robustness", b"robustn\xe9ss"))
    assert_one_line_error(elens("check", "a cat", "-p", path), f"{path}:2: <root>: not UTF-8 text")


# -- images ---------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes16(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour): grey, grey+alpha, RGB or RGBA."""
    pixels = pixels if pixels.ndim == 3 else pixels[:, :, None]
    height, width, channels = pixels.shape
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size and holds (almost) no pixels: what a decompression bomb looks like to open()."""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b""))


def encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


NOISE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))


def bad_images() -> list[tuple[str, str, bytes, str]]:
    png, jpeg = encoded(NOISE, "PNG"), encoded(NOISE, "JPEG")
    bomb = encoded(Image.new("L", (3000, 3000)), "PNG")  # 9 Mpx of zeros in a few kB
    return [
        ("text file", "notes.png", b"a grocery list, not a picture\n", "not an image file Pillow can read"),
        ("html", "page.jpg", b"<!doctype html><title>x</title>", "not an image file Pillow can read"),
        ("0 bytes", "empty.png", b"", "empty file (0 bytes)"),
        ("truncated PNG", "cut.png", png[: len(png) // 2], "damaged or truncated image"),
        ("truncated JPEG", "cut.jpg", jpeg[: len(jpeg) * 2 // 3], "damaged or truncated image"),
        ("PNG signature only", "sig.png", png[:8], "not an image file Pillow can read"),
        ("bomb under Pillow's ceiling", "bomb.png", bomb,
         "3000x3000 pixels exceeds limits.max_image_pixels (1000000)"),
        ("bomb over Pillow's ceiling", "huge.png", png_header_only(100_000, 100_000),
         "refused as a decompression bomb"),
    ]


@pytest.mark.parametrize("name,file,data,message", bad_images(), ids=[b[0] for b in bad_images()])
def test_bad_image_file_is_a_one_line_error(tmp_path, policy, name, file, data, message):
    good = tmp_path / "good.png"
    NOISE.save(good)
    bad = tmp_path / file
    bad.write_bytes(data)
    result = elens("moderate", good, bad, "-p", policy, "--out", tmp_path / "out", "--audit-log", tmp_path / "a.jsonl")
    assert_one_line_error(result, f"elens: error: {bad}: ", message)
    assert not (tmp_path / "out").exists() and not (tmp_path / "a.jsonl").exists()


def test_missing_file_and_folder_are_one_line_errors(tmp_path, policy):
    result = elens("moderate", tmp_path / "nope.png", "-p", policy, "--out", tmp_path / "out")
    assert_one_line_error(result, f"{tmp_path / 'nope.png'}: no such image file")
    result = elens("moderate", tmp_path, "-p", policy, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "is a directory" in result.stderr  # click's own usage error
    assert not (tmp_path / "out").exists()


def test_the_pixel_limit_comes_from_the_policy(tmp_path, policy):
    big = tmp_path / "big.png"
    Image.new("RGB", (1200, 1000)).save(big)
    assert_one_line_error(elens("moderate", big, "-p", policy, "--out", tmp_path / "o1"), "limits.max_image_pixels")
    policy.write_text(POLICY.replace("1000000", "1200000"))
    assert elens("moderate", big, "-p", policy, "--out", tmp_path / "o2", "--audit-log", tmp_path / "a.jsonl"
                 ).exit_code == 0


def odd_images() -> list[tuple[str, str, bytes, np.ndarray]]:
    """(name, file, bytes, the RGB pixels elens should see)."""
    rgb = np.asarray(NOISE).astype(np.float64)
    grey = np.asarray(NOISE.convert("L")).astype(np.float64)
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[:, 32:] = 255  # left half transparent: white shows through
    rgba = Image.fromarray(np.dstack([np.asarray(NOISE), alpha]))
    over_white = rgb.copy()
    over_white[:, :32] = 255
    palette = NOISE.convert("P")
    ramp16 = (np.linspace(0, 65535, 64)[None, :].repeat(48, 0)).astype(np.uint16)
    ramp8 = ramp16.astype(np.float64) / 257
    rgb16 = (rgb * 257).astype(np.uint16)
    return [
        ("CMYK JPEG", "cmyk.jpg", encoded(NOISE.convert("CMYK"), "JPEG", quality=95), rgb),
        ("CMYK TIFF", "cmyk.tif", encoded(NOISE.convert("CMYK"), "TIFF"), rgb),
        ("RGBA PNG", "rgba.png", encoded(rgba, "PNG"), over_white),
        ("grey+alpha PNG", "la.png", encoded(rgba.convert("LA"), "PNG"),
         np.where(alpha[:, :, None] == 0, 255, np.asarray(rgba.convert("L"))[:, :, None]).repeat(3, 2)),
        ("palette PNG", "p.png", encoded(palette, "PNG"), np.asarray(palette.convert("RGB"))),
        ("palette GIF", "p.gif", encoded(palette, "GIF"), np.asarray(palette.convert("RGB"))),
        ("1-bit PNG", "bw.png", encoded(NOISE.convert("1"), "PNG"), np.asarray(NOISE.convert("1").convert("RGB"))),
        ("16-bit grey PNG", "grey16.png", png_bytes16(ramp16), ramp8[:, :, None].repeat(3, 2)),
        ("16-bit RGB PNG", "rgb16.png", png_bytes16(rgb16), rgb),
        ("16-bit RGBA PNG", "rgba16.png",
         png_bytes16(np.dstack([rgb16, (alpha.astype(np.uint16) * 257)])), over_white),
        ("32-bit float TIFF", "float.tif", encoded(Image.fromarray((grey / 255).astype(np.float32)), "TIFF"),
         grey[:, :, None].repeat(3, 2)),
    ]


def test_odd_image_modes_are_converted_not_refused(tmp_path, policy):
    files = []
    for name, file, data, _ in odd_images():
        (tmp_path / file).write_bytes(data)
        files.append(tmp_path / file)
    out = tmp_path / "out"
    result = elens("moderate", *files, "-p", policy, "--out", out, "--audit-log", tmp_path / "a.jsonl", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert [i["status"] for i in manifest["images"]] == ["delivered"] * len(files)
    for (name, _, _, expected), entry in zip(odd_images(), manifest["images"]):
        with Image.open(out / entry["file"]) as got:
            assert got.mode == "RGB" and got.size == (64, 48), name
            diff = np.abs(np.asarray(got).astype(np.float64) - expected).mean()
        assert diff < (4.0 if "JPEG" in name else 1.0), (name, diff)
    received = [r for r in read_records(tmp_path / "a.jsonl") if r["event"] == "image.received"]
    assert [r["source"] for r in received] == [str(f) for f in files]
    assert verify(tmp_path / "a.jsonl").ok


# -- policy files ---------------------------------------------------------------------
def attack_policies(tmp_path: Path) -> list[tuple[str, Path, str]]:
    base = POLICY.rstrip("\n")
    bomb = ['lol0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    bomb += [f"lol{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    (tmp_path / "outside.yaml").write_text(POLICY)
    (tmp_path / "team").mkdir()
    cases = {
        "alias bomb": ("bomb.yaml", "\n".join(bomb) + "\n", "the document expands to more than 100000 values"),
        "python tag": ("tag.yaml", base.replace("name: robustness", "name: !!python/object/apply:os.system [id]"),
                       "2: metadata.name: the YAML tag tag:yaml.org,2002:python/object/apply:os.system is not allowed"),
        "python module tag": ("mod.yaml", base + "\nx: !!python/module:os\n",
                              "the YAML tag tag:yaml.org,2002:python/module:os is not allowed"),
        "huge file": ("huge.yaml", base + "\n#" + "x" * (2 * 1024 * 1024) + "\n", "the file is larger than 2 MB"),
        "extends outside": ("team/child.yaml", "elens: 1\nextends: ../outside.yaml\n",
                            "2: extends: '../outside.yaml' points outside this policy's folder"),
        "extends absolute": ("team/abs.yaml", f"elens: 1\nextends: {tmp_path / 'outside.yaml'}\n",
                             "points outside this policy's folder"),
        "extends itself": ("self.yaml", "elens: 1\nextends: self.yaml\n", "2: extends: cycle: the policy extends itself"),
        "extends cycle": ("ping.yaml", "elens: 1\nextends: pong.yaml\n", "extends: cycle:"),
    }
    (tmp_path / "pong.yaml").write_text("elens: 1\nextends: ping.yaml\n")
    out = []
    for name, (file, text, message) in cases.items():
        (tmp_path / file).write_text(text)
        out.append((name, tmp_path / file, message))
    return out


@pytest.mark.parametrize("name", ["alias bomb", "python tag", "python module tag", "huge file", "extends outside",
                                  "extends absolute", "extends itself", "extends cycle"])
def test_hostile_policy_is_a_one_line_error(tmp_path, name):
    [(_, path, message)] = [c for c in attack_policies(tmp_path) if c[0] == name]
    assert_one_line_error(elens("check", "a cat", "-p", path, cwd=tmp_path), message)
    assert_one_line_error(elens("policy", "validate", path), message, prefix=str(tmp_path))
    assert not (tmp_path / "elens-audit.jsonl").exists()


def test_an_endless_policy_file_is_not_swallowed():
    """/dev/zero (or an endless pipe) as the policy: read up to the limit, then refused."""
    with pytest.raises(PolicyError, match="larger than 2 MB"):
        load_policy("/dev/zero")


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
ANYTHING = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=6)
    | st.text(st.characters(codec=None, categories=["Cs", "Cc", "Zs"]), max_size=3)
    | st.binary(max_size=3) | st.frozensets(st.integers(), max_size=2) | st.complex_numbers() | st.just(object()),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner)
    | st.dictionaries(st.sampled_from(["elens", "metadata", "name", "version", "categories", "id", "thresholds",
                                       "text", "extends", "pipeline", "backend", "plugin", "limits", "audit"])
                      | st.integers() | st.none() | st.text(st.characters(codec=None), max_size=3), inner,
                      max_size=4),
    max_leaves=16,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANYTHING, st.booleans())
def test_policy_from_any_python_data_raises_only_policy_error(data, valid_head):
    """Policy.from_dict on data no YAML file could hold: non-text keys, bytes, sets, NaN, objects."""
    if valid_head:
        data = {"elens": 1, "metadata": {"name": "f", "version": "1"}, "x": data}
    try:
        Policy.from_dict(data, source="fuzz.yaml")
    except PolicyError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz.yaml")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400) | st.builds(lambda t, b: t.encode() + b, st.text(max_size=80), st.binary(max_size=8)))
def test_policy_file_of_any_bytes_raises_only_policy_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "p.yaml"
    path.write_bytes(data)
    try:
        load_policy(path)
    except PolicyError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))


@settings(max_examples=150, deadline=None)
@given(JSONISH)
def test_policy_round_trips_through_json_data(data):
    """What from_dict accepts, the YAML loader accepts too (the same rules on both roads)."""
    import yaml

    doc = {"elens": 1, "metadata": {"name": "f", "version": "1"}, "limits": data}
    try:
        expected = Policy.from_dict(doc, source="fuzz.yaml").sha256
    except PolicyError:
        expected = None
    try:
        got = Policy.from_text(yaml.safe_dump(doc), source="fuzz.yaml").sha256
    except PolicyError:
        got = None
    assert got == expected


# -- output paths ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../escape.png", "/tmp/escape.png", "sub/escape.png", "..", ".", "", "a\0b.png",
                                  "..\\escape.png"])
def test_an_output_name_cannot_leave_the_output_folder(tmp_path, name):
    """The guard every output name goes through, including any taken from a plugin or a manifest."""
    out = tmp_path / "out"
    with pytest.raises(InputError, match="an output name must be a plain file name inside the output folder"):
        write_new(out, [name], b"data")
    assert not (tmp_path / "escape.png").exists() and not out.exists()


def test_planted_links_in_out_are_not_followed(tmp_path, policy):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for name in ("image-000.png", "manifest.json"):
        os.symlink(victim, out / name)
    result = elens("generate", "a lighthouse", "--seed", 1, "-p", policy, "--out", out,
                   "--audit-log", tmp_path / "a.jsonl", "--json")
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "keep me"
    assert all((out / n).is_symlink() for n in ("image-000.png", "manifest.json"))
    written = sorted(p.name for p in out.iterdir() if not p.is_symlink())
    rid = json.loads(result.stdout)["request_id"][:12]
    assert written == [f"image-000-{rid}.png", f"manifest-{rid}.json"]
    assert json.loads((out / f"manifest-{rid}.json").read_text())["images"][0]["file"] == f"image-000-{rid}.png"


def test_out_that_cannot_be_a_folder_stops_before_the_request(tmp_path, policy):
    (tmp_path / "a-file").write_text("")
    args = ["-p", policy, "--audit-log", tmp_path / "a.jsonl"]
    result = elens("generate", "a lighthouse", *args, "--out", tmp_path / "a-file")
    assert result.exit_code == 2 and "is a file" in result.stderr  # click's usage error
    result = elens("generate", "a lighthouse", *args, "--out", tmp_path / "a-file" / "sub")
    assert_one_line_error(result, f"--out {tmp_path / 'a-file' / 'sub'}: {tmp_path / 'a-file'} is not a folder")
    assert not (tmp_path / "a.jsonl").exists()


def test_a_second_request_into_the_same_out_does_not_clobber_the_first(tmp_path, policy):
    out = tmp_path / "out"
    args = ["-n", 2, "-p", policy, "--out", out, "--audit-log", tmp_path / "a.jsonl", "--json"]
    first = json.loads(elens("generate", "a lighthouse", "--seed", 1, *args).stdout)
    second = json.loads(elens("generate", "a red barn", "--seed", 2, *args).stdout)
    assert [i["file"] for i in first["images"]] == ["image-000.png", "image-001.png"]
    rid = second["request_id"][:12]
    assert [i["file"] for i in second["images"]] == [f"image-000-{rid}.png", f"image-001-{rid}.png"]
    assert json.loads((out / "manifest.json").read_text())["request_id"] == first["request_id"]
    for manifest in (first, second):
        for entry in manifest["images"]:
            with Image.open(out / entry["file"]) as img:
                assert sha256_image(img) == entry["sha256"]



def test_a_generation_size_beyond_the_pixel_limit_is_refused_before_the_backend(elens_lens):
    from elens.errors import InputError

    lens = elens_lens("limits: {max_image_pixels: 10000}")
    with pytest.raises(InputError, match=r"200x200 images exceed limits.max_image_pixels \(10000\)"):
        lens.generate("a cat", width=200, height=200)
    with pytest.raises(InputError, match="width must be a positive integer"):
        lens.generate("a cat", width=0, height=64)
    assert lens.generate("a cat", width=64, height=64).images[0].image.size == (64, 64)
    from elens.audit import read_records

    assert [r["event"] for r in read_records(lens.audit.path)].count("request.received") == 1  # refused: unrecorded
