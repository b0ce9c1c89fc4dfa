import numpy as np
import pytest
import torch

from apparel.data.dataset import PKSampler, TensorImages, load_images, normalize


def test_batches_hold_p_labels_times_k() -> None:
    labels = np.repeat(np.arange(10), [4, 4, 4, 4, 4, 3, 2, 5, 6, 1])
    sampler = PKSampler(labels, p=4, k=3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) >= 1
    for batch in batches:
        assert len(batch) == 12
        values, counts = np.unique(labels[batch], return_counts=True)
        assert len(values) == 4 and (counts == 3).all()
        assert 9 not in values  # a label with one sample has no positive
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_sampler_rejects_labels_without_positives() -> None:
    with pytest.raises(ValueError, match="at least two labels"):
        PKSampler([0, 1, 2], p=2, k=2)


def test_images_load_as_rgb_whatever_the_mode(tmp_path) -> None:
    from PIL import Image

    paths = []
    for mode in ("RGB", "RGBA", "L", "P", "CMYK"):
        path = tmp_path / f"{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
        Image.new(mode, (20, 10)).save(path)
        paths.append(str(path))
    images = load_images(paths, 16)
    assert images.shape == (5, 3, 16, 16) and images.dtype == torch.uint8
    image, index = TensorImages(images, flip=True)[2]
    assert index == 2 and image.shape == (3, 16, 16)
    assert normalize(images).dtype == torch.float32
