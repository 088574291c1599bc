import numpy as np
import pytest
import torch

from uotm.plots import image_grid


def test_image_grid_places_tiles_in_rows_with_frames_and_blank_fill():
    images = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, 1, 2, 3)
    grid = image_grid(images, nrow=2)
    assert grid.shape == (3 * 4, 2 * 5)  # 3 rows of 2 tiles, each tile 2x3 plus a 1-pixel frame
    assert grid[1, 1] == 0 and grid[1, 6] == 1 and grid[5, 1] == 2 and grid[9, 1] == 4
    assert grid[0, 0] == 128 and np.all(grid[8:, 5:] == 128)  # frames and the blank last tile
    assert image_grid(torch.zeros(2, 1, 2, 2) - 1, nrow=2, border=0.0)[0, 0] == 0.0
    with pytest.raises(ValueError, match=r"\(n, 1, H, W\)"):
        image_grid(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="nrow"):
        image_grid(torch.zeros(2, 1, 4, 4), nrow=0)
