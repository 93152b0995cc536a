import json
import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from paramviz.errors import ConfigError, ImageError, OutputExistsError, OutputNotWritableError, UnknownNameError
from paramviz.io import (
    MANIFEST,
    OutputDir,
    add_to_manifest,
    check_output_dir,
    image_grid,
    labeled_grid,
    load_image,
    prepare_output_dir,
    read_manifest,
    resize_center_crop,
    save_image,
    tensor_to_pil,
    write_manifest,
)


def test_save_then_load_is_lossless_for_png(tmp_path):
    torch.manual_seed(0)
    image = torch.randint(0, 256, (1, 3, 20, 30)).float() / 255
    save_image(image, tmp_path / "x.png")
    back = load_image(tmp_path / "x.png")
    assert back.shape == (1, 3, 20, 30)
    assert torch.equal(back, image)


def test_load_resizes_long_side_and_keeps_aspect(tmp_path):
    Image.new("RGB", (200, 100), "red").save(tmp_path / "r.jpg")
    image = load_image(tmp_path / "r.jpg", size=64)
    assert image.shape == (1, 3, 32, 64)
    assert image[0, 0].mean() > 0.9 and image[0, 1].mean() < 0.1


def test_load_sample_image_and_grayscale(tmp_path):
    assert load_image("sample:chelsea", size=50).shape == (1, 3, 33, 50)
    Image.new("L", (8, 8), 128).save(tmp_path / "g.png")
    assert load_image(tmp_path / "g.png").shape == (1, 3, 8, 8)
    with pytest.raises(UnknownNameError, match="chelsea"):
        load_image("sample:chelse")


@pytest.mark.parametrize("content", [None, b"not an image at all", b"\x89PNG\r\n\x1a\n truncated"])
def test_unreadable_images_raise_image_error_naming_the_file(tmp_path, content):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match="bad.png"):
        load_image(path)
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_tensor_to_pil_rejects_wrong_shapes():
    with pytest.raises(ImageError, match=r"\(3\|4, H, W\)"):
        tensor_to_pil(torch.zeros(2, 8, 8))
    with pytest.raises(ImageError, match="batch of 2"):
        tensor_to_pil(torch.zeros(2, 3, 8, 8))


def test_grids_place_every_image():
    images = torch.stack([torch.full((3, 4, 4), v) for v in (0.0, 0.5, 1.0)])
    grid = image_grid(images, ncol=3, pad=1)
    assert grid.shape == (3, 6, 16)
    assert grid[:, 1, 1].eq(0).all() and grid[:, 1, 6].eq(0.5).all()
    pil = labeled_grid([[images[0], images[1]], [images[2]]], ["row a", "row b"], ["c1", "c2"])
    assert pil.size[0] > 2 * 4 and pil.size[1] > 2 * 4


def test_output_dir_is_atomic_and_refuses_overwrite(tmp_path):
    out = tmp_path / "run"
    with OutputDir(out) as target:
        target.write_json("metrics.json", {"a": 1})
        assert not out.exists()  # nothing visible before success
    assert json.loads((out / "metrics.json").read_text()) == {"a": 1}

    with pytest.raises(OutputExistsError, match="--force"):
        OutputDir(out)
    with pytest.raises(RuntimeError, match="boom"), OutputDir(out, force=True) as target:
        target.write_text("new.txt", "x")
        raise RuntimeError("boom")
    assert (out / "metrics.json").exists() and not (out / "new.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temp leftovers

    with OutputDir(out, force=True) as target:
        target.write_text("new.txt", "x")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "new.txt"]
    assert read_manifest(out).files == ("new.txt",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_check_output_dir_accepts_empty_and_refuses_file(tmp_path):
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty")
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        check_output_dir(tmp_path / "f", force=True)


def test_output_dir_may_be_the_current_directory(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with OutputDir(".") as target:
        target.write_text("a.txt", "1")
    assert sorted(p.name for p in work.iterdir()) == [MANIFEST, "a.txt"]
    with pytest.raises(OutputExistsError):
        OutputDir(".")
    with OutputDir(".", force=True) as target:
        target.write_text("b.txt", "2")
    assert sorted(p.name for p in work.iterdir()) == [MANIFEST, "b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # no temporary leftovers


def test_output_dir_that_fills_up_during_the_run_keeps_both(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(OutputExistsError), OutputDir(out) as target:
        target.write_text("new.txt", "x")
        out.mkdir()
        (out / "other.txt").write_text("y")
    assert sorted(p.name for p in out.iterdir()) == ["other.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    import numpy as np

    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (4, 1))
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    image = load_image(tmp_path / "ramp16.png")
    row = image[0, 0, 0]
    assert abs(row[0].item()) < 1e-6 and abs(row[-1].item() - 1) < 1e-6
    assert abs(row[32].item() - 32 / 63) < 0.01  # mid-grey stays mid-grey
    assert torch.equal(image[0, 0], image[0, 2])


# --- --force replaces only what paramviz wrote ---------------------------------------------------------------
def tree(root):
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def paramviz_run(out, force=False, **files):
    with OutputDir(out, force, kind="visualize") as target:
        for name, text in files.items():
            target.write_text(name.replace("__", "/"), text)


def test_force_refuses_a_directory_with_foreign_files_and_touches_nothing(tmp_path, monkeypatch):
    # the reproduction: a project directory used as --out . with --force
    work = tmp_path / "x"
    (work / "src").mkdir(parents=True)
    (work / "src" / "main.py").write_text("code")
    (work / "data.csv").write_text("d")
    before = tree(work)
    monkeypatch.chdir(work)
    with pytest.raises(OutputExistsError, match="no .paramviz.json manifest") as info:
        OutputDir(".", force=True)
    assert "'data.csv'" in str(info.value) and "'src/'" in str(info.value) and "empty or new --out" in str(info.value)
    assert tree(work) == before and sorted(p.name for p in tmp_path.iterdir()) == ["x"]

    # a paramviz output with a foreign file added later: refused, and the foreign entries are named
    out = tmp_path / "run"
    paramviz_run(out, **{"image.png": "1", "steps__step_00001.png": "2"})
    (out / "steps" / "notes.txt").write_text("mine")
    (out / "extra").mkdir()
    before = tree(out)
    with pytest.raises(OutputExistsError, match=r"2 entries that paramviz did not write: 'extra/', 'steps/notes.txt'"):
        paramviz_run(out, force=True, **{"image.png": "new"})
    assert tree(out) == before


def test_force_replaces_a_paramviz_output_atomically(tmp_path):
    out = tmp_path / "run"
    paramviz_run(out, **{"image.png": "old", "steps__step_00001.png": "s", "config.toml": "c"})
    manifest = read_manifest(out)
    assert manifest.kind == "visualize" and manifest.files == ("config.toml", "image.png", "steps/step_00001.png")
    assert json.loads((out / MANIFEST).read_text())["paramviz"]

    # a run that fails part-way leaves the old outputs exactly as they were
    with pytest.raises(RuntimeError), OutputDir(out, force=True) as target:
        target.write_text("image.png", "half")
        raise RuntimeError("fails")
    assert tree(out)["image.png"] == "old" and sorted(p.name for p in out.iterdir())[0] == MANIFEST

    paramviz_run(out, force=True, **{"image.png": "new"})
    assert tree(out) == {MANIFEST: (out / MANIFEST).read_text(), "image.png": "new"}
    assert read_manifest(out).files == ("image.png",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary folders left


def test_home_directory_with_force_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".bashrc").write_text("x")
    with pytest.raises(OutputExistsError, match="not written by paramviz"):
        check_output_dir("~", force=True)
    assert (tmp_path / ".bashrc").read_text() == "x"


@pytest.mark.parametrize(
    "manifest",
    ['{"kind": "visualize", "files": ["../outside.txt"]}', "not json", '{"kind": "style", "files": "image.png"}'],
)
def test_a_damaged_manifest_is_never_trusted(tmp_path, manifest):
    out = tmp_path / "run"
    out.mkdir()
    (out / MANIFEST).write_text(manifest)
    with pytest.raises(OutputExistsError, match="manifest"):
        check_output_dir(out, force=True)
    assert (out / MANIFEST).read_text() == manifest


def test_nested_output_dirs_are_listed_by_the_outer_manifest(tmp_path):
    out = tmp_path / "demo"
    with OutputDir(out, kind="demo") as target:
        target.write_text("demo.png", "grid")
        with OutputDir(target.path("arm") / "unit", kind="visualize") as inner:
            inner.write_text("image.png", "i")
    assert read_manifest(out).files == ("arm/unit/.paramviz.json", "arm/unit/image.png", "demo.png")
    assert read_manifest(out / "arm" / "unit").files == ("image.png",)
    with OutputDir(out, force=True, kind="demo") as target:  # the whole nested output is replaceable
        target.write_text("demo.png", "grid 2")
    assert tree(out)["demo.png"] == "grid 2" and not (out / "arm").exists()


def test_sweep_writes_incrementally_into_a_directory_it_owns(tmp_path):
    sweep = prepare_output_dir(tmp_path / "sweep", kind="sweep")
    manifest = read_manifest(sweep)
    assert (manifest.kind, manifest.files) == ("sweep", ())
    for arm in ("a", "b"):
        with OutputDir(sweep / "arms" / arm, kind="visualize", record_in=sweep) as target:
            target.write_text("image.png", arm)
        assert (sweep / "arms" / arm / "image.png").read_text() == arm  # visible at once
    (sweep / "summary.csv").write_text("a,b")
    add_to_manifest(sweep, ["summary.csv"])
    files = read_manifest(sweep).files
    assert files == (
        "arms/a/.paramviz.json",
        "arms/a/image.png",
        "arms/b/.paramviz.json",
        "arms/b/image.png",
        "summary.csv",
    )
    assert read_manifest(sweep).kind == "sweep"
    with pytest.raises(OutputExistsError):
        prepare_output_dir(sweep)
    (sweep / "arms" / "mine.txt").write_text("user")
    with pytest.raises(OutputExistsError, match="arms/mine.txt"):
        prepare_output_dir(sweep, force=True)
    (sweep / "arms" / "mine.txt").unlink()
    prepare_output_dir(sweep, force=True)
    assert tree(sweep) == {MANIFEST: (sweep / MANIFEST).read_text()} and read_manifest(sweep).files == ()
    write_manifest(sweep, "sweep", ["x.txt"])
    assert read_manifest(sweep).files == ("x.txt",)
    with pytest.raises(ConfigError, match="record_in"):
        OutputDir(tmp_path / "elsewhere", record_in=sweep)


# --- the output path is checked before any work ----------------------------------------------------------------
def test_empty_out_and_unwritable_paths_are_refused_before_work(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"--out ''"):
        check_output_dir("")
    with pytest.raises(ConfigError, match=r"--out ''"):
        OutputDir("")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputNotWritableError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "file.txt" / "sub" / "run")
    with pytest.raises(OutputExistsError, match="is a file"):
        check_output_dir(tmp_path / "file.txt")

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    with pytest.raises(OutputNotWritableError, match="not writable"):
        check_output_dir(locked)
    with pytest.raises(OutputNotWritableError, match="where it would be created"):
        check_output_dir(locked / "new" / "run")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_directory_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputNotWritableError):
            check_output_dir(locked / "run")
    finally:
        locked.chmod(0o755)


# --- decompression bombs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", [40, 50])  # 1600 px: Pillow warns; 2500 px (over twice the limit): Pillow refuses
def test_decompression_bomb_images_raise_image_error_with_the_numbers(tmp_path, monkeypatch, side):
    path = tmp_path / "bomb.png"
    Image.new("L", (side, side)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match=rf"'.*bomb.png' has {side * side:,} pixels, more than the 1,000"):
        load_image(path)


def test_resize_center_crop_covers_a_height_by_width_box_and_keeps_the_center():
    image = torch.zeros(1, 3, 40, 40)
    image[..., 10:30, :] = 1.0  # a white band across the middle rows
    out = resize_center_crop(image, (16, 32))  # scaled to 32 x 32, rows 8..24 kept: all inside the band
    assert out.shape == (1, 3, 16, 32)
    assert out[..., 2:-2, :].min() > 0.99
    assert resize_center_crop(torch.rand(2, 3, 20, 28), 16).shape == (2, 3, 16, 16)
