import json

import pytest
import torch
from PIL import Image

from paramviz.errors import ImageError, OutputExistsError, UnknownNameError
from paramviz.io import (
    OutputDir,
    check_output_dir,
    image_grid,
    labeled_grid,
    load_image,
    save_image,
    tensor_to_pil,
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
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
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
    assert sorted(p.name for p in work.iterdir()) == ["a.txt"]
    with pytest.raises(OutputExistsError):
        OutputDir(".")
    with OutputDir(".", force=True) as target:
        target.write_text("b.txt", "2")
    assert sorted(p.name for p in work.iterdir()) == ["b.txt"]
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
