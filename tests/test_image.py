"""Image preprocessing equals TFLite's RESIZE_BILINEAR (half-pixel centres), rounded, and maps boxes back."""

import numpy as np
import pytest

import edgenn.image
from edgenn.image import ImageInput, _resize_bilinear_numpy, fit, resize_pixels
from edgenn.runtime import TensorInfo


@pytest.fixture(scope="module")
def tf():
    import tensorflow
    return tensorflow


@pytest.mark.parametrize("src,dst", [((341, 512), (224, 224)), ((28, 28), (96, 64)), ((480, 640), (300, 300))])
def test_resize_is_tflite_half_pixel_rounded(tf, src, dst):
    image = np.random.default_rng(0).integers(0, 256, size=src + (3,), dtype=np.uint8)
    reference = tf.raw_ops.ResizeBilinear(images=image[None].astype(np.float32), size=dst,
                                          align_corners=False, half_pixel_centers=True)[0].numpy()
    np.testing.assert_allclose(_resize_bilinear_numpy(image.astype(np.float32), *dst), reference, atol=1e-3)
    rounded = np.floor(reference + 0.5)
    for opencv in (True, False):  # OpenCV's fixed point (used when installed) and numpy's float
        with pytest.MonkeyPatch.context() as patch:
            if not opencv:
                patch.setattr(edgenn.image, "_opencv", lambda: None)
            resized = resize_pixels(image, *dst)
            assert resized.dtype == np.uint8
            assert np.abs(resized - rounded).max() <= 1  # random pixels: the hardest case for fixed point
            assert abs(resized.mean() - reference.mean()) < 0.01  # rounded, not truncated: no bias
            np.testing.assert_array_equal(resize_pixels(image[:, :, 0], *dst), resized[:, :, 0])
            assert resize_pixels(image[:, :, :1], *dst).shape == dst + (1,)


def test_opencvs_fast_resize_used_at_whole_multiples_is_exact_there(monkeypatch):
    import cv2

    used = []
    resize = cv2.resize
    monkeypatch.setattr(cv2, "resize", lambda *a, **k: used.append(k["interpolation"]) or resize(*a, **k))
    rng = np.random.default_rng(2)
    for channels in (3, 1):
        for ratio_y, ratio_x in [(2, 4), (3, 1), (5, 6), (2, 2)]:  # 2x2: OpenCV switches to its area resize
            image = rng.integers(0, 256, size=(29 * ratio_y, 37 * ratio_x, channels), dtype=np.uint8)[..., :channels]
            if channels == 1:
                image = image[:, :, 0]
            exact = resize(image, (37, 29), interpolation=cv2.INTER_LINEAR_EXACT)
            np.testing.assert_array_equal(resize(image, (37, 29), interpolation=cv2.INTER_LINEAR), exact)
            used.clear()
            np.testing.assert_array_equal(resize_pixels(image, 29, 37), exact)
            assert used == [cv2.INTER_LINEAR]
    resize_pixels(np.zeros((60, 80, 3), np.uint8), 29, 37)
    assert used[-1] == cv2.INTER_LINEAR_EXACT  # not a whole multiple


@pytest.mark.parametrize("policy", ["stretch", "letterbox", "crop"])
def test_placement_maps_model_boxes_back(policy):
    image = np.zeros((200, 400, 3), np.uint8)
    image[50:150, 100:200] = 255  # a white square
    resized, placement = fit(image, 100, 100, policy)
    ys, xs = np.nonzero(resized[:, :, 0] > 127)
    box = placement.to_image([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    np.testing.assert_allclose(box, [100, 50, 200, 150], atol=3)


def test_quantized_inputs_take_raw_pixels():
    image = np.full((10, 10, 3), 200, np.uint8)
    uint8 = TensorInfo("in", 0, (1, 4, 4, 3), np.dtype(np.uint8), 1 / 128, 128)
    int8 = TensorInfo("in", 0, (1, 4, 4, 3), np.dtype(np.int8), 1 / 255, -128)
    assert (ImageInput.from_tensor(uint8).prepare(image, uint8)[0] == 200).all()
    assert (ImageInput.from_tensor(int8).prepare(image, int8)[0] == 72).all()


def test_integer_pictures_of_other_types_keep_their_levels():
    for channels in (3, 1):
        tensor = TensorInfo("in", 0, (1, 4, 4, channels), np.dtype(np.uint8), 1 / 128, 128)
        for picture in (np.full((8, 8, 3), 200, np.int64), np.full((8, 8, 3), 300, np.int32)):
            array, _ = ImageInput.from_tensor(tensor).prepare(picture, tensor)
            assert (array == min(int(picture.flat[0]), 255)).all()


def test_a_picture_of_the_models_size_is_copied():
    tensor = TensorInfo("in", 0, (1, 4, 4, 3), np.dtype(np.uint8), 1 / 128, 128)
    picture = np.full((4, 4, 3), 7, np.uint8)
    array, _ = ImageInput.from_tensor(tensor).prepare(picture, tensor)
    assert not np.shares_memory(array, picture)


def test_normalisation_from_manifest_and_grayscale():
    tensor = TensorInfo("in", 0, (1, 8, 8, 1), np.dtype(np.float32), 0.0, 0)
    spec = {"normalization": {"mean": 127.5, "std": 127.5}}
    array, _ = ImageInput.from_tensor(tensor, spec).prepare(np.full((16, 16, 3), 255, np.uint8), tensor)
    assert array.shape == (1, 8, 8, 1)
    np.testing.assert_allclose(array, 1.0, atol=0.01)


@pytest.mark.parametrize("channels", [3, 1])
def test_bgr_frames_prepare_like_their_rgb_picture(channels):
    rgb = np.random.default_rng(1).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    tensor = TensorInfo("in", 0, (1, 16, 16, channels), np.dtype(np.float32), 0.0, 0)
    image_input = ImageInput.from_tensor(tensor)
    from_rgb, _ = image_input.prepare(rgb, tensor)
    from_bgr, _ = image_input.prepare(np.ascontiguousarray(rgb[:, :, ::-1]), tensor, order="bgr")
    np.testing.assert_allclose(from_bgr, from_rgb, atol=1e-6)
    assert from_bgr.flags["C_CONTIGUOUS"]


def test_non_image_input_is_refused():
    from edgenn.errors import EdgennError
    with pytest.raises(EdgennError, match="not an image"):
        ImageInput.from_tensor(TensorInfo("audio", 0, (1, 15600), np.dtype(np.float32), 0.0, 0))


def test_numpy_path_reproduces_the_sensitive_coral_check(fixtures_dir, monkeypatch):
    """Without OpenCV, the numpy resize alone still gives mobilenet_v1 0.25 its documented tiger cat."""
    from edgenn.runtime import open_model
    from edgenn.vision import VisionTask
    from images import read_rgb

    monkeypatch.setattr(edgenn.image, "_opencv", lambda: None)
    task = VisionTask.create(open_model(fixtures_dir / "models/coral/mobilenet_v1_0.25_128_quant.tflite"), top_k=3)
    hit = [r for r in task.predict(read_rgb(fixtures_dir / "images/coral/cat.bmp")) if r.label_id == 283]
    assert hit and hit[0].score > 0.25
