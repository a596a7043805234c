"""Elastic deformation: checked against scipy's map_coordinates as an independent warp."""
import numpy as np
import pytest
import torch
from scipy import ndimage

from unet_helpers.transforms import ElasticDeform, elastic_warp


def blocks_mask(height=33, width=47, values=(0, 3, 7)):
    """Large constant regions, so most of a warped float copy lands exactly on one class."""
    mask = torch.full((height, width), values[0], dtype=torch.int64)
    mask[height // 3 :, : width // 2] = values[1]
    mask[: height // 2, width // 2 + 5 :] = values[2]
    return mask


def scipy_warp(array, displacement, order):
    """out[y, x] = in[y + dy, x + dx], mirrored at the edge pixels (scipy's 'mirror' mode)."""
    height, width = array.shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    coords = [rows + displacement[0].double().numpy(), cols + displacement[1].double().numpy()]
    return ndimage.map_coordinates(array, coords, order=order, mode="mirror")


def test_zero_displacement_is_the_identity():
    image, mask = torch.rand(2, 33, 47), blocks_mask()
    out, out_mask = ElasticDeform(std=0.0)(image, mask)
    assert torch.allclose(out, image, atol=1e-5)
    assert torch.equal(out_mask, mask) and out_mask.dtype == torch.int64


def test_warp_matches_scipy_map_coordinates():
    torch.manual_seed(0)
    image, mask = torch.rand(2, 33, 47, dtype=torch.float64), blocks_mask()
    field = ElasticDeform(std=6.0).sample_displacement(33, 47)
    out, out_mask = elastic_warp(image, mask, field)
    for channel in range(2):
        expected = scipy_warp(image[channel].numpy(), field, order=1)
        np.testing.assert_allclose(out[channel].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(out_mask.numpy(), scipy_warp(mask.numpy(), field, order=0))


def test_large_shift_reflects_at_the_border():
    image, mask = torch.arange(20.0).view(1, 4, 5), torch.arange(20).view(4, 5)
    field = torch.zeros(2, 4, 5)
    field[1] = 2.0  # sample two columns to the right: the last two columns mirror back inside
    out, out_mask = elastic_warp(image, mask, field)
    assert out_mask[0].tolist() == [2, 3, 4, 3, 2]
    assert torch.allclose(out[0, 0], torch.tensor([2.0, 3, 4, 3, 2]))
    out, _ = elastic_warp(image, mask, field, padding_mode="border")
    assert torch.allclose(out[0, 0], torch.tensor([2.0, 3, 4, 4, 4]))


def test_mask_keeps_its_values_and_image_and_mask_share_the_field():
    torch.manual_seed(1)
    mask = blocks_mask()
    out, out_mask = ElasticDeform(std=10.0)(mask.double()[None], mask)  # the image is a float copy of the mask
    assert set(out_mask.unique().tolist()) <= {0, 3, 7}
    assert not torch.equal(out_mask, mask)  # it did move
    settled = (out[0] - out[0].round()).abs() < 1e-9  # bilinear samples inside one region
    assert settled.float().mean() > 0.8
    assert torch.equal(out[0][settled].round().long(), out_mask[settled])


def test_field_passes_through_the_grid_vectors_and_is_smooth():
    generator = torch.Generator().manual_seed(3)
    deform = ElasticDeform(grid_size=3, std=10.0, generator=generator)
    field = deform.sample_displacement(33, 41)  # grid points at rows 0, 16, 32 and cols 0, 20, 40
    coarse = torch.randn((2, 3, 3), generator=torch.Generator().manual_seed(3)) * 10.0
    assert torch.allclose(field[:, ::16, ::20], coarse, atol=1e-4)
    assert field.shape == (2, 33, 41) and field.std() > 1.0
    steps = max(field.diff(dim=1).abs().max(), field.diff(dim=2).abs().max())
    assert steps < coarse.abs().max() / 4  # neighbouring pixels move almost together


def test_seeded_reproducibility_and_non_square_shapes():
    image, mask = torch.rand(3, 20, 57), torch.randint(0, 4, (20, 57))
    first = ElasticDeform(generator=torch.Generator().manual_seed(5))(image, mask)
    second = ElasticDeform(generator=torch.Generator().manual_seed(5))(image, mask)
    other = ElasticDeform(generator=torch.Generator().manual_seed(6))(image, mask)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])
    assert first[0].shape == (3, 20, 57) and first[1].shape == (20, 57)
    torch.manual_seed(9)
    global_a = ElasticDeform()(image, mask)
    torch.manual_seed(9)
    global_b = ElasticDeform()(image, mask)
    assert torch.equal(global_a[0], global_b[0])


def test_bad_inputs():
    deform, image, mask = ElasticDeform(), torch.rand(1, 8, 8), torch.zeros(8, 8, dtype=torch.int64)
    with pytest.raises(TypeError, match=r"image must be a torch.Tensor"):
        deform(image.numpy(), mask)
    with pytest.raises(ValueError, match=r"expected image \(C, H, W\) and mask \(H, W\); got image \(1, 1, 8, 8\)"):
        deform(image[None], mask)
    with pytest.raises(ValueError, match=r"differ in \(H, W\)"):
        deform(image, mask[:7])
    with pytest.raises(TypeError, match=r"image must be a float tensor"):
        deform(mask[None], mask)
    with pytest.raises(TypeError, match=r"mask must hold integer class ids; got dtype torch.float32"):
        deform(image, mask.float())
    with pytest.raises(ValueError, match=r"needs H, W >= 2"):
        deform(torch.rand(1, 1, 8), torch.zeros(1, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"grid_size must be an int >= 2"):
        ElasticDeform(grid_size=1)
    with pytest.raises(ValueError, match=r"std must be >= 0"):
        ElasticDeform(std=-1.0)
    with pytest.raises(ValueError, match=r"padding_mode must be one of"):
        ElasticDeform(padding_mode="zeros")
    with pytest.raises(ValueError, match=r"displacement must be \(2, H, W\) = \(2, 8, 8\)"):
        elastic_warp(image, mask, torch.zeros(2, 4, 4))


class _Fields(torch.utils.data.Dataset):
    """Returns the first value of a fresh displacement field for every item."""

    def __init__(self, deform):
        self.deform = deform

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return self.deform.sample_displacement(8, 8)[0, 0, 0]


def test_seeded_generator_gives_each_worker_and_epoch_its_own_draws():
    deform = ElasticDeform(generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(_Fields(deform), batch_size=1, num_workers=2,
                                         generator=torch.Generator().manual_seed(1))
    epochs = [torch.cat(list(loader)).tolist() for _ in range(2)]
    assert len(set(epochs[0])) == 4, epochs[0]  # no two items share a field
    assert set(epochs[0]).isdisjoint(epochs[1])  # the next epoch draws new fields
    again = torch.utils.data.DataLoader(_Fields(ElasticDeform(generator=torch.Generator().manual_seed(0))),
                                        batch_size=1, num_workers=2, generator=torch.Generator().manual_seed(1))
    assert torch.cat(list(again)).tolist() == epochs[0]  # still reproducible from the seeds
