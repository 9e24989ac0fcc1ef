import numpy as np
import pytest
import torch
from torch_geometric.utils import add_self_loops

from scsiameseclu.module import (
    AugmentConfig,
    GatedFusion,
    NetworkConfig,
    SiameseNetwork,
    TrainConfig,
    cross_correlation_loss,
    fit_tied_mixture,
    mask_features,
    mixture_log_likelihood,
    mixture_posterior,
    perturb_edges,
    sinkhorn,
    training_step,
)
from scsiameseclu.module._init import split_blocks


def _pairs(n=500, k=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    i = torch.arange(n).repeat_interleave(k)
    j = torch.randint(0, n, (n * k,), generator=g)
    keep = i != j
    lo, hi = torch.minimum(i[keep], j[keep]), torch.maximum(i[keep], j[keep])
    keys = torch.unique(lo * n + hi)
    return torch.stack([keys // n, keys % n])


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5])
def test_mask_rate(rate):
    x = torch.ones(2000, 50)
    out = mask_features(x, rate, generator=torch.Generator().manual_seed(0))
    assert abs(float((out == 0).float().mean()) - rate) < 0.01
    assert out.shape == x.shape


def test_mask_deterministic_and_noise():
    x = torch.ones(100, 10)
    a = mask_features(x, 0.3, 0.5, generator=torch.Generator().manual_seed(3))
    b = mask_features(x, 0.3, 0.5, generator=torch.Generator().manual_seed(3))
    c = mask_features(x, 0.3, 0.5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert abs(float((a - mask_features(x, 0.3, 0.0, generator=torch.Generator().manual_seed(3))).std()) - 0.5) < 0.1


@pytest.mark.parametrize("mode", ["random", "similar"])
def test_perturb_edges_rates(mode):
    n = 500
    pairs = _pairs(n)
    x = torch.randn(n, 8)
    out = perturb_edges(pairs, n, 0.3, 0.1, x=x, add_mode=mode, generator=torch.Generator().manual_seed(0))
    # symmetric, no self-loops
    keys = set(map(tuple, out.T.tolist()))
    assert all((j, i) in keys for i, j in keys)
    assert not (out[0] == out[1]).any()
    undirected = {(min(i, j), max(i, j)) for i, j in keys}
    original = set(map(tuple, pairs.T.tolist()))
    kept = len(undirected & original)
    added = len(undirected - original)
    assert abs(kept / pairs.shape[1] - 0.7) < 0.05
    assert 0 < added <= round(0.1 * pairs.shape[1])


def test_similar_edges_are_similar():
    n = 400
    x = torch.cat([torch.randn(n // 2, 4) + 5, torch.randn(n // 2, 4) - 5])
    pairs = _pairs(n)
    out = perturb_edges(pairs, n, 0.0, 0.2, x=x, add_mode="similar", generator=torch.Generator().manual_seed(0))
    original = set(map(tuple, pairs.T.tolist()))
    new = [(i, j) for i, j in out.T.tolist() if i < j and (i, j) not in original]
    same_group = np.mean([(i < n // 2) == (j < n // 2) for i, j in new])
    assert same_group > 0.95


def test_perturb_edges_bad_mode():
    with pytest.raises(ValueError, match="add_mode"):
        perturb_edges(_pairs(50), 50, 0.1, 0.1, add_mode="nope")


@pytest.mark.parametrize("weights", [None, torch.tensor([0.5, 0.3, 0.2])])
def test_sinkhorn_marginals(weights):
    scores = torch.randn(600, 3, generator=torch.Generator().manual_seed(0))
    q = sinkhorn(scores, weights, epsilon=0.5, n_iters=50)
    assert torch.allclose(q.sum(1), torch.ones(600), atol=1e-4)
    target = torch.full((3,), 1 / 3) if weights is None else weights
    assert torch.allclose(q.mean(0), target, atol=1e-3)
    assert (q >= 0).all()


def test_tied_mixture_recovers_unequal_clusters():
    # Two elongated clusters of 90% / 10% of the cells; a start with 25% of labels wrong is repaired.
    g = torch.Generator().manual_seed(0)
    cov = torch.tensor([[4.0, 0.0], [0.0, 0.1]])
    big = torch.randn(900, 2, generator=g) @ cov.sqrt()
    small = torch.randn(100, 2, generator=g) @ cov.sqrt() + torch.tensor([0.0, 2.0])
    z = torch.cat([big, small])
    truth = torch.cat([torch.zeros(900), torch.ones(100)]).long()
    flip = torch.rand(1000, generator=g) < 0.25
    start = torch.nn.functional.one_hot(torch.where(flip, 1 - truth, truth), 2).float()
    weights, means, shared = fit_tied_mixture(z, start)
    post = mixture_posterior(z, weights, means, shared)
    assert torch.allclose(post.sum(1), torch.ones(1000))
    labels = post.argmax(1)
    assert float((labels == truth).float().mean()) > 0.97
    assert sorted(weights.tolist()) == pytest.approx([0.1, 0.9], abs=0.03)
    assert torch.allclose(shared, shared.T)


def test_fit_mixture_keeps_the_most_likely_start():
    # Three separated blobs of 600 / 300 / 100 cells; prototypes that split the big blob and merge
    # the two small ones start EM in a worse optimum than a start with the right partition.
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    sizes = [600, 300, 100]
    truth = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes))
    z = centres[truth] + 0.3 * torch.randn(1000, 2, generator=g)
    net = SiameseNetwork(5, 3, NetworkConfig(n_hidden=4, n_latent=2))
    net.set_prototypes(torch.tensor([[1.0, 0.3], [1.0, -0.3], [-1.0, 1.0]]))
    good = torch.nn.functional.one_hot(truth, 3).float()
    log_liks = net.fit_mixture(z)  # the prototypes alone
    assert len(log_liks) == 1
    wrong = net.soft_assign(z, 1.0).argmax(1)
    prototypes = torch.nn.functional.one_hot(net.cluster_scores(z).argmax(1), 3).float()
    log_liks = net.fit_mixture(z, [prototypes, good])
    assert len(log_liks) == 2 and log_liks[1] > log_liks[0]
    labels = net.soft_assign(z, 1.0).argmax(1)
    assert float((labels[:, None] == labels[None, :]).eq(truth[:, None] == truth[None, :]).float().mean()) == 1.0
    assert float((wrong[:, None] == wrong[None, :]).eq(truth[:, None] == truth[None, :]).float().mean()) < 0.9
    kept = (net.mixture_weights, net.mixture_means, net.mixture_cov)
    assert mixture_log_likelihood(z, *kept) == pytest.approx(log_liks[1])
    with pytest.raises(ValueError, match="at least one start"):
        net.fit_mixture(z, [])


def test_cross_correlation_identity_is_minimum():
    z = torch.linalg.qr(torch.randn(1000, 16)).Q * np.sqrt(1000)
    z = z - z.mean(0)
    assert float(cross_correlation_loss(z, z)) < 1e-3
    assert float(cross_correlation_loss(z, torch.randn(1000, 16))) > 0.5


def test_fusion_extremes():
    z_e, z_g = torch.randn(10, 4), torch.randn(10, 4)
    assert torch.equal(GatedFusion(4, 0.0)(z_e, z_g)[0], z_e)
    assert torch.equal(GatedFusion(4, 1.0)(z_e, z_g)[0], z_g)
    fusion = GatedFusion(4, 0.8)
    torch.nn.init.normal_(fusion.gate.weight, std=10.0)
    _, gate = fusion(z_e, z_g)
    logit = torch.logit(gate)
    assert (logit - np.log(0.8 / 0.2)).abs().max() <= 1.0 + 1e-5


def test_training_loss_finite_and_decreases():
    torch.manual_seed(0)
    n = 300
    labels = torch.arange(n) % 3
    x = torch.randn(n, 10) + 3 * torch.nn.functional.one_hot(labels, 10)[:, :10].float()
    pairs = _pairs(n)
    net = SiameseNetwork(10, 3, NetworkConfig(n_hidden=32, n_latent=8))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for step in range(60):
        out = training_step(net, x, pairs, AugmentConfig(), TrainConfig(), g, cluster=step >= 30)
        assert torch.isfinite(out.loss)
        assert all(np.isfinite(v) for v in out.terms.values())
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    assert np.mean(losses[20:30]) < np.mean(losses[:10])
    assert np.mean(losses[50:60]) < np.mean(losses[30:40])


def test_no_per_cell_parameters():
    net = SiameseNetwork(10, 4)
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == sum(p.numel() for p in SiameseNetwork(10, 4).parameters())
    for n in (5, 50):
        z, _ = net.embed(torch.randn(n, 10), _pairs(n, 2))
        assert z.shape == (n, NetworkConfig().n_latent)


@pytest.mark.parametrize("n_input", [20, 100])
def test_identity_init_is_seed_free_and_keeps_the_input(n_input):
    """Identity start: the same network for any torch seed, a narrow input passes unchanged."""
    x = torch.randn(300, n_input) @ torch.randn(n_input, n_input)
    edges = _pairs(300, 4)
    edges = torch.cat([edges, edges.flip(0)], dim=1)
    config = NetworkConfig(n_hidden=32, n_latent=8)
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = SiameseNetwork(n_input, 3, config)
        net.identity_init(x)
        nets.append(net)
    state = [{k: v for k, v in n.state_dict().items() if k != "prototypes"} for n in nets]
    assert all(torch.equal(state[0][k], state[1][k]) for k in state[0])
    first = nets[0].expression.net[0].weight
    if n_input <= 32:  # the identity into the first n_input hidden units
        assert torch.equal(first, torch.eye(32, n_input))
    else:  # orthonormal principal axes of x, the first along its largest variance
        assert torch.allclose(first @ first.T, torch.eye(32), atol=1e-5)
        xc = x - x.mean(0)
        assert (xc @ first[0]).var() >= (xc @ first[1]).var() >= (xc @ first[-1]).var()
    # Graph attention starts uniform: the first GAT layer is a plain mean over neighbours and self
    # (the encoder adds the self-loops once for all its layers).
    from scsiameseclu.module._gat import SparseGraph

    conv = nets[0].graph.convs[0]
    h = conv.lin(x)
    mean = torch.zeros_like(h).index_add_(0, edges[1], h[edges[0]]) + h
    mean = mean / (torch.bincount(edges[1], minlength=300) + 1)[:, None]
    assert torch.allclose(conv(x, SparseGraph(add_self_loops(edges, num_nodes=300)[0], 300)), mean, atol=1e-4)
    # Fewer cells than hidden units: fewer principal axes than rows, the rest start at zero.
    small = SiameseNetwork(n_input, 3, config)
    small.identity_init(x[:10])
    assert small.decoder[-1].weight.shape == (n_input, 32)
    # A graph branch that reads neighbour means too (n_hops) is wider than x: it starts at the identity.
    hops = SiameseNetwork(n_input, 3, NetworkConfig(n_hidden=32, n_latent=8, n_hops=1))
    hops.identity_init(x)
    assert torch.equal(hops.graph.convs[0].lin.weight, torch.eye(32, 2 * n_input))


@pytest.mark.parametrize("n_hops", [0, 1])
def test_identity_init_keeps_modalities_on_their_own_coordinates(n_hops):
    """With an extra modality each branch starts in its own latent block, not summed on the same coordinates."""
    x = torch.randn(200, 30)  # 20 expression columns, then 10 of an extra modality
    config = NetworkConfig(n_hidden=32, n_latent=8, extra_dims=(10,), n_hops=n_hops)
    net = SiameseNetwork(30, 3, config)
    net.identity_init(x)
    z_expr, z_extra = net.expression(x[:, :20]), net.extras[0](x[:, 20:])
    assert z_expr[:, 4:].abs().max() == 0 and z_expr[:, :4].abs().max() > 0
    assert z_extra[:, :4].abs().max() == 0 and z_extra[:, 4:].abs().max() > 0
    # The graph branch's first layer reads expression into the first hidden half, the extra
    # modality into the second, and nothing from the neighbour means.
    first = net.graph.convs[0].lin.weight
    assert first[:16, 20:].abs().max() == 0 and first[16:, :20].abs().max() == 0
    assert not first[:, 30:].any() and first[:16, :20].abs().max() > 0 and first[16:, 20:30].abs().max() > 0
    # The decoder maps each latent block back onto its own modality's columns.
    decoded = net.decoder[-1].weight @ net.decoder[0].weight
    assert decoded[:20, 4:].abs().max() == 0 and decoded[20:, :4].abs().max() == 0
    with pytest.raises(ValueError, match="Cannot split 2 coordinates into 3 blocks"):
        split_blocks(2, 3)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (AugmentConfig, {"mask_rate": 1.0}),
        (AugmentConfig, {"edge_add_rate": -1}),
        (AugmentConfig, {"edge_add_mode": "x"}),
        (NetworkConfig, {"init_weights": "zeros"}),
        (NetworkConfig, {"n_latent": 2, "extra_dims": (3, 4)}),
    ],
)
def test_config_errors(cls, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        cls(**kwargs)


def test_fast_elu_is_elu():
    from scsiameseclu.module._encoders import elu

    x = (torch.randn(500, 16) * 5).requires_grad_()
    ref = torch.nn.functional.elu(x)
    out = elu(x)
    assert torch.allclose(out, ref, atol=1e-6)
    g = torch.randn_like(ref)
    (grad_ref,) = torch.autograd.grad(ref, x, g)
    (grad,) = torch.autograd.grad(out, x, g)
    assert torch.allclose(grad, grad_ref, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 0.1, 0.01])
def test_contrastive_loss_is_symmetric_cross_entropy(temperature):
    from torch.nn import functional as F

    from scsiameseclu.module._losses import contrastive_loss

    z1 = torch.randn(64, 8, requires_grad=True)
    z2 = torch.randn(64, 8)
    logits = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / temperature
    target = torch.arange(64)
    ref = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    loss = contrastive_loss(z1, z2, temperature)  # 0.01: the per-direction log-sum-exp branch
    assert torch.isfinite(loss) and torch.allclose(loss, ref, rtol=1e-5)
    assert torch.allclose(torch.autograd.grad(loss, z1)[0], torch.autograd.grad(ref, z1)[0], atol=1e-5)


def test_mixture_posterior_in_blocks_equals_whole(monkeypatch):
    import scsiameseclu.module._mixture as mixture

    z = torch.randn(1000, 5)
    weights = torch.full((3,), 1 / 3, dtype=torch.float64)
    means, cov = torch.randn(3, 5, dtype=torch.float64), torch.eye(5, dtype=torch.float64)
    whole = mixture.mixture_posterior(z, weights, means, cov)
    monkeypatch.setattr(mixture, "POSTERIOR_BLOCK", 128)
    assert torch.equal(mixture.mixture_posterior(z, weights, means, cov), whole)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_input_scaled_in_blocks_equals_whole(monkeypatch, dtype, order):
    """Blocks give the whole matrix's float32 quotient, whatever the input's memory order and float width."""
    import scsiameseclu.model._input as model_input

    values = (np.random.default_rng(0).normal(size=(1000, 7)) * 3).astype(np.float32)
    dense = np.asarray(values, dtype=dtype, order=order)
    monkeypatch.setattr(model_input._read, "ROW_BLOCK", 100)
    index = np.array([0, 2, 3, 6])
    np.testing.assert_array_equal(model_input._scaled(dense, index, 1.7), values[:, index] / 1.7)
    every = np.arange(7)
    np.testing.assert_array_equal(model_input._scaled(dense, every, 1.7), values / 1.7)
    assert model_input._scaled(dense, every, 1.7).flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("peak", [1.0, 3e30])
def test_input_std_in_blocks_matches_float64(monkeypatch, peak):
    import scsiameseclu.model._input as model_input

    dense = (np.random.default_rng(1).normal(size=(1000, 6)) * 3 + 2).astype(np.float32)
    dense[:, 4] = 5.0  # a constant column: its deviation must come out as 0
    dense[7, 1] = peak
    monkeypatch.setattr(model_input._read, "ROW_BLOCK", 128)
    ref = dense.astype(np.float64)
    np.testing.assert_allclose(model_input._std(dense, axis=0), ref.std(0), rtol=1e-9)
    assert model_input._std(dense, axis=0)[4] == 0
    np.testing.assert_allclose(model_input._std(dense), ref.std(), rtol=1e-9)


@pytest.mark.parametrize(("heads", "self_loops", "n_edges"), [(1, True, 300), (2, True, 300), (1, False, 40)])
def test_sparse_gat_equals_pyg_gatconv(heads, self_loops, n_edges):
    """One sparse product per layer computes PyG's GATConv: values and every gradient, on random graphs.

    With few edges and no self-loops some cells have no incoming edge (their output is the bias).
    """
    from torch_geometric.nn import GATConv
    from torch_geometric.utils import add_self_loops

    from scsiameseclu.module._gat import SparseGATConv, SparseGraph

    g = torch.Generator().manual_seed(heads + n_edges)
    n = 60
    edges = torch.randint(0, n, (2, n_edges), generator=g)
    edges = torch.unique(edges[:, edges[0] != edges[1]], dim=1)
    if self_loops:
        edges = add_self_loops(edges, num_nodes=n)[0]
    torch.manual_seed(0)  # test-local weights of the reference layer, copied into the sparse one
    reference = GATConv(12, 8, heads=heads, add_self_loops=False)
    sparse_layer = SparseGATConv(12, 8, heads=heads)
    sparse_layer.load_state_dict(reference.state_dict())
    x = torch.randn(n, 12, generator=g, requires_grad=True)
    weight = torch.randn(n, 8 * heads, generator=g)
    expected, got = reference(x, edges), sparse_layer(x, SparseGraph(edges, n))
    assert torch.allclose(got, expected, atol=1e-5)
    grads_expected = torch.autograd.grad((expected * weight).sum(), [x, *reference.parameters()])
    grads_got = torch.autograd.grad((got * weight).sum(), [x, *sparse_layer.parameters()])
    for a, b in zip(grads_got, grads_expected, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    assert [name for name, _ in sparse_layer.named_parameters()] == [name for name, _ in reference.named_parameters()]
