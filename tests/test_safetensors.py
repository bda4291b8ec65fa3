"""``jl.interop.save_safetensors`` / ``load_safetensors``: exact round trips and clear errors."""

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import jaxlinear as jl

save, load = jl.interop.save_safetensors, jl.interop.load_safetensors


def test_round_trip_keeps_shapes_dtypes_and_values(tmp_path):
    state = {
        "scalar": np.array(3.5, np.float32),  # 0-d stays 0-d (was written as (1,))
        "step": np.array(7, np.int64),
        "jax_scalar": jnp.float32(2.0),
        "empty": np.zeros((0, 3), np.float32),
        "bf16": jnp.arange(4, dtype=jnp.bfloat16),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
        "int8": np.array([-128, 127], np.int8),
        "": np.ones(1, np.float16),  # an empty key is a valid key
    }
    path = tmp_path / "w.safetensors"
    save(path, state)
    loaded = load(path)
    assert set(loaded) == set(state)
    for k, v in state.items():
        v = np.asarray(v)
        assert loaded[k].shape == v.shape and loaded[k].dtype == v.dtype, k
        np.testing.assert_array_equal(loaded[k], v)
    assert loaded["bf16"].dtype == ml_dtypes.bfloat16


def test_torch_tensors_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    state = {"w": torch.ones(2, 3, dtype=torch.bfloat16), "s": torch.tensor(1.5)}
    save(tmp_path / "t.safetensors", state)
    loaded = load(tmp_path / "t.safetensors")
    assert loaded["w"].dtype == ml_dtypes.bfloat16 and loaded["s"].shape == ()


def test_metadata_key_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="`state_dict` must not have the key '__metadata__'"):
        save(tmp_path / "w.safetensors", {"__metadata__": np.ones(2)})
    assert not (tmp_path / "w.safetensors").exists()


@pytest.mark.parametrize("key", [1, None, ("a", "b"), b"w"])
def test_non_str_key_is_rejected(tmp_path, key):
    with pytest.raises(TypeError, match=r"`state_dict` keys must be str, got"):
        save(tmp_path / "w.safetensors", {key: np.ones(2)})


@pytest.mark.parametrize("value", [[1.0, 2.0], 3.0, None, "abc", {"a": np.ones(2)}])
def test_non_array_value_is_rejected(tmp_path, value):
    with pytest.raises(TypeError, match=r"`state_dict\['w'\]` must be an array"):
        save(tmp_path / "w.safetensors", {"w": value})


@pytest.mark.parametrize(
    "value",
    [np.array(["a", "b"]), np.array([object()]), np.zeros(2, ml_dtypes.float8_e4m3fn)],
    ids=["str", "object", "float8"],
)
def test_unreadable_dtype_is_rejected(tmp_path, value):
    with pytest.raises(TypeError, match=r"`state_dict\['w'\]` must have one of the dtypes"):
        save(tmp_path / "w.safetensors", {"w": value})


@pytest.mark.parametrize("state_dict", [[("w", np.ones(2))], None, np.ones(2)])
def test_non_mapping_state_dict_is_rejected(tmp_path, state_dict):
    with pytest.raises(TypeError, match="`state_dict` must be a mapping"):
        save(tmp_path / "w.safetensors", state_dict)


def test_directory_path_names_the_path(tmp_path):
    with pytest.raises(
        IsADirectoryError, match=f"`path` must be a file, got the directory .*{tmp_path.name}"
    ):
        load(tmp_path)
    with pytest.raises(
        IsADirectoryError, match=f"`path` must be a file, got the directory .*{tmp_path.name}"
    ):
        save(tmp_path, {"w": np.ones(2)})


def test_missing_file_and_directory_name_the_path(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="`path` must be an existing file, got .*nope"):
        load(missing)
    with pytest.raises(FileNotFoundError, match="`path` must be in an existing directory.*nodir"):
        save(tmp_path / "nodir" / "w.safetensors", {"w": np.ones(2)})


def test_corrupt_file_names_the_path(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="`path` must be a safetensors file.*bad.safetensors"):
        load(bad)


@pytest.mark.parametrize("path", [3, None, ["w.safetensors"]])
def test_non_path_is_rejected(path):
    with pytest.raises(TypeError, match="`path` must be a str or os.PathLike"):
        load(path)
    with pytest.raises(TypeError, match="`path` must be a str or os.PathLike"):
        save(path, {"w": np.ones(2)})


def test_file_with_a_dtype_numpy_lacks_names_the_path(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "f8.safetensors"
    save_file(
        {"w": np.zeros(2, ml_dtypes.float8_e4m3fn)}, str(path)
    )  # writable, not numpy-readable
    with pytest.raises(ValueError, match="`path` must be a safetensors file with numpy dtypes.*f8"):
        load(path)
