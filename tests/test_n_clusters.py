"""The stability curve of k: its building blocks, on data with a known number of groups."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scsiameseclu.model._n_clusters import stability_curve, stability_range, ward_cuts  # noqa: E402


def _views(n_groups, *, noise, n_views=4, seed=0):
    """Views of the same cells: separated group centres, fresh noise per view."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(n_groups, 5))
    labels = np.repeat(np.arange(n_groups), 60)
    return [centres[labels] + rng.normal(scale=noise, size=(labels.size, 5)) for _ in range(n_views)], labels


def test_ward_cuts_one_column_per_k():
    views, labels = _views(4, noise=0.3)
    cuts = ward_cuts(views[0], [2, 4, 6])
    assert cuts.shape == (labels.size, 3)
    assert [len(np.unique(c)) for c in cuts.T] == [2, 4, 6]


def test_stability_peaks_at_the_true_number_of_groups():
    views, _ = _views(5, noise=0.5)
    curve = stability_curve(views, range(2, 10))
    assert curve[5] == pytest.approx(1.0)
    assert curve[5] > max(curve[k] for k in range(6, 10))


def test_stability_needs_two_views():
    views, _ = _views(3, noise=0.5)
    with pytest.raises(ValueError, match="at least 2 views"):
        stability_curve(views[:1], [2, 3])


def test_range_covers_twice_the_chosen_k():
    assert list(stability_range(4)) == list(range(2, 21))
    assert max(stability_range(15)) == 30


@pytest.mark.parametrize("minibatch", [False, True])
def test_view_embeddings_same_cells_fresh_views(minibatch):
    """Both training sources embed the same cells in every view, each view a new augmentation draw."""
    from scsiameseclu.model._batches import CellGraph, FullGraph, SampledNeighbourhoods
    from scsiameseclu.model._settings import Limits
    from scsiameseclu.module import AugmentConfig, NetworkConfig, SiameseNetwork

    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=(n, 8)).astype(np.float32)
    src = np.arange(n)
    pairs = np.stack([src, (src + 1) % n]).astype(np.int64)
    pairs = np.sort(pairs, axis=0)
    net = SiameseNetwork(8, 3, NetworkConfig(graph_weight=0.8), generator=torch.Generator().manual_seed(0))
    net.reset_parameters(torch.Generator().manual_seed(0))
    device = torch.device("cpu")
    if minibatch:
        graph = CellGraph(torch.as_tensor(pairs), n)
        source = SampledNeighbourhoods(
            x,
            graph,
            None,
            device=device,
            n_hops=2,
            batch_size=64,
            limits=Limits(),
            generator=torch.Generator().manual_seed(1),
        )
    else:
        source = FullGraph(x, pairs, None, device=device)
    views = source.view_embeddings(net, AugmentConfig(), torch.Generator().manual_seed(2), 3, 100)
    assert len(views) == 3 and all(v.shape == (100, net.config.n_latent) for v in views)
    assert not np.allclose(views[0], views[1])  # another draw of the augmentation
    again = source.view_embeddings(net, AugmentConfig(), torch.Generator().manual_seed(2), 3, 100)
    assert all(np.array_equal(a, b) for a, b in zip(views, again, strict=True))  # the generator decides
    assert net.training  # left in training mode
