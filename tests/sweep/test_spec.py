from pathlib import Path

import pytest

from paramviz.errors import ConfigError, UnknownNameError
from paramviz.params import ParamSpec
from paramviz.sweep.spec import describe_arms, expand, load_sweep, parse_sweep

STYLE = """
task = "style"
[base]
content = "images/content.png"
styles = ["images/a.png", "sample:coffee"]
weights = "random"
size = 32
[axes]
"param.name" = ["pixel", "fourier"]
"""


def test_grid_is_the_product_of_axes_and_zip_groups(write_sweep, tiny_registered):
    path = write_sweep(
        """
        task = "visualize"
        [base]
        backbone = "tiny_sweep_net"
        objectives = ["conv3:1"]
        size = 24
        [axes]
        "param.name" = ["pixel", "fourier"]
        seed = [0, 1, 2]
        [[zip]]
        transforms = ["none", "jitter:2"]
        steps = [3, 5]
        """
    )
    spec = load_sweep(path)
    arms = expand(spec)
    assert len(arms) == 2 * 3 * 2
    assert spec.axis_keys == ["param.name", "seed", "transforms", "steps"]
    assert arms[0].axes == {"param.name": "pixel", "seed": 0, "transforms": "none", "steps": 3}
    assert arms[1].axes["transforms"] == "jitter:2" and arms[1].config.steps == 5  # zipped keys move together
    assert arms[-1].config.param == ParamSpec("fourier") and arms[-1].config.seed == 2
    assert len({a.id for a in arms}) == len(arms)
    assert [a.id for a in expand(load_sweep(path))] == [a.id for a in arms]  # stable
    table = describe_arms(arms, spec.axis_keys)
    assert arms[5].id in table and "jitter:2" in table


def test_ids_do_not_depend_on_the_device_or_the_file_location(write_sweep, tiny_registered, tmp_path):
    base = 'task = "visualize"\n[base]\nbackbone = "tiny_sweep_net"\nobjectives = ["conv3:1"]\n'
    a = expand(parse_sweep(base + 'device = "cpu"\n', folder=tmp_path))
    b = expand(parse_sweep(base + 'device = "auto"\n', folder=tmp_path / "elsewhere"))
    assert [x.id for x in a] == [x.id for x in b]
    c = expand(parse_sweep(base + "steps = 7\n", folder=tmp_path))
    assert c[0].id != a[0].id


def test_relative_paths_resolve_against_the_sweep_file_folder(write_sweep, tmp_path):
    arms = expand(load_sweep(write_sweep(STYLE)))
    config = arms[0].config
    assert Path(config.content) == tmp_path / "images" / "content.png"
    assert config.styles == (str(tmp_path / "images" / "a.png"), "sample:coffee")
    assert config.weights == "random"


def test_a_maco_spectrum_folder_resolves_against_the_sweep_file_folder(write_sweep, tiny_registered, tmp_path):
    arms = expand(
        load_sweep(
            write_sweep(
                """
                task = "visualize"
                [base]
                backbone = "tiny_sweep_net"
                objectives = ["conv3:1"]
                [base.param]
                name = "maco"
                spectrum = "photos"
                [axes]
                seed = [0, 1]
                "param.spectrum" = ["photos", "/abs/paintings", ""]
                """
            )
        )
    )
    assert [a.config.param.spectrum for a in arms[:3]] == [str(tmp_path / "photos"), "/abs/paintings", ""]
    assert arms[0].config.resolve().optimizer == "nadam"
    body = 'task = "visualize"\n[base.param]\nname = "maco"\nspectrum = "p"\n'
    base_only = expand(parse_sweep(body, folder=tmp_path))
    assert base_only[0].config.param.spectrum == str(tmp_path / "p")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('task = "visualize"\n[bsae]\nsize = 3\n', "unknown key 'bsae'; did you mean 'base'"),
        ("[base]\nsize = 64\n", "no task given"),
        ('task = "robustness"\n', "cannot be swept"),
        ('task = "visualize"\n[base]\nsizee = 64\n', r"\[base\].*unknown option 'sizee'.*did you mean 'size'"),
        ('task = "visualize"\n[axes]\nseed = 3\n', "axis 'seed': expected a list"),
        ('task = "visualize"\n[axes]\nseed = []\n', "axis 'seed': the list of values is empty"),
        ('task = "visualize"\n[axes]\nseed = [0]\n[[zip]]\nseed = [1]\n', "'seed' is swept twice"),
        ('task = "visualize"\n[[zip]]\nseed = [0, 1]\nsteps = [3]\n', "must have the same length"),
        ("task = 'visualize'\nthis is not toml", "not valid TOML"),
    ],
)
def test_malformed_sweep_files_are_refused_naming_the_key(body, message):
    with pytest.raises(ConfigError, match=message):
        expand(parse_sweep(body, source="s.toml"))


def test_an_invalid_axis_value_names_the_arm(tiny_registered):
    body = (
        'task = "visualize"\n[base]\nobjectives = ["conv3:1"]\n[axes]\nseed = [0]\n"param.name" = ["pixel", "pixl"]\n'
    )
    with pytest.raises(ConfigError, match=r"s.toml: arm 1 \(seed=0, param.name=pixl\): unknown parameterization"):
        expand(parse_sweep(body, source="s.toml"))
    with pytest.raises(ConfigError, match=r"arm 0 \(steps=0\): steps must be a positive integer"):
        expand(parse_sweep('task = "visualize"\n[axes]\nsteps = [0]\n', source="s.toml"))
    with pytest.raises(UnknownNameError):
        parse_sweep('task = "visualise"\n')


def test_duplicate_arms_are_refused():
    with pytest.raises(ConfigError, match="same config"):
        expand(parse_sweep('task = "visualize"\n[axes]\nsteps = [4, 4]\n'))


def test_a_missing_sweep_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_sweep(tmp_path / "nope.toml")


def test_with_base_changes_fields_and_makes_another_sweep(basic_sweep):
    from paramviz.sweep.spec import parse_assignment

    spec = load_sweep(basic_sweep)
    quick = spec.with_base(dict(parse_assignment(a) for a in ("steps=1", "param.decay_power=1.5", "transforms=none")))
    arms, quick_arms = expand(spec), expand(quick)
    assert all(a.config.steps == 1 and a.config.transforms == "none" for a in quick_arms)
    assert quick_arms[1].config.param.decay_power == 1.5
    assert {a.id for a in arms}.isdisjoint(a.id for a in quick_arms) and quick.text == ""
    assert spec.base["steps"] == 4 and "param" not in spec.base  # the original is unchanged
    assert parse_assignment('transforms="lucid"') == ("transforms", "lucid")
    assert parse_assignment("objectives=['stage4:1']") == ("objectives", ["stage4:1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_assignment("steps")


def test_images_inside_objective_specs_resolve_against_the_sweep_folder(write_sweep, tiny_registered, tmp_path):
    body = 'task = "visualize"\n[base]\nbackbone = "tiny_sweep_net"\n'
    body += (
        '[axes]\nobjectives = [["conv3:1", "0.5*input_diff:images/target.png"], ["inversion:conv3:sample:coffee"]]\n'
    )
    first, second = expand(parse_sweep(body, folder=tmp_path))
    assert first.config.objectives == ("conv3:1", f"0.5*input_diff:{tmp_path / 'images' / 'target.png'}")
    assert second.config.objectives == ("inversion:conv3:sample:coffee",)  # sample images are not paths
