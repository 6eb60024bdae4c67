"""Grad-CAM: agreement with Captum, hand-computed maps, state restored, region shares, the probe."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from biaskit.api import TrainedModel
from biaskit.data import make_biased_data
from biaskit.errors import UsageError
from biaskit.plugins import registries
from biaskit.runs import RunContext
from biaskit_plugins.gradcam import CaptumGradCAM, GradCAM, normalise_maps, upsample
from biaskit_plugins.gradcam_metrics import deletion_test, region_masks, region_shares

from conftest import make_tiny_base

TOLERANCE = 1e-5


def randomise_batchnorm(model: nn.Module, seed: int = 1) -> nn.Module:
    """Give every BatchNorm random affine weights and statistics.

    timm zero-initialises the last BatchNorm of each residual block, which would make
    a block's bn2 output, and so its Grad-CAM map, zero everywhere.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=generator))
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return model


def make_resnet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return randomise_batchnorm(registries().models.create("resnet18", width=8)).eval()


def make_small_cnn(seed: int = 0) -> nn.Module:
    """Return a small-cnn (width 8) whose weights are scaled by 3, so its maps are far from zero."""
    torch.manual_seed(seed)
    model = registries().models.create("small-cnn", width=8).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)
    return model


def make_images(count: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, 28, 28, generator=torch.Generator().manual_seed(seed))


def hook_count(model: nn.Module) -> int:
    total = 0
    for module in model.modules():
        total += len(module._forward_hooks) + len(module._forward_pre_hooks) + len(module._backward_hooks)
        total += len(getattr(module, "_backward_pre_hooks", {}))
    return total


def captum_maps(model: nn.Module, layer: str, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    from captum.attr import LayerAttribution, LayerGradCam

    attributions = LayerGradCam(model, model.get_submodule(layer)).attribute(
        images, target=targets, relu_attributions=True
    )
    return LayerAttribution.interpolate(attributions, tuple(images.shape[-2:]), interpolate_mode="bilinear")[:, 0]


def resolve_test_target(kind: str, model: nn.Module, images: torch.Tensor):
    """Return (target passed to GradCAM, the (N,) classes Captum gets)."""
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    if kind == "predicted":
        return "predicted", predicted
    if kind == "int":
        return 3, torch.full_like(predicted, 3)
    per_sample = torch.arange(len(images)) % 10
    return per_sample, per_sample


@pytest.fixture(scope="module")
def resnet():
    return make_resnet()


@pytest.fixture(scope="module")
def small_cnn():
    return make_small_cnn()


# --- agreement with Captum -------------------------------------------------------------


@pytest.mark.parametrize("layer", ["layer2", "layer3", "layer4", "layer4.1.bn2", "layer2.0.bn2"])
@pytest.mark.parametrize("kind", ["predicted", "int", "tensor"])
def test_resnet18_matches_captum(resnet, layer, kind):
    images = make_images()
    target, classes = resolve_test_target(kind, resnet, images)

    mine = GradCAM(resnet, layer).attribute(images, target)
    reference = captum_maps(resnet, layer, images, classes)

    assert mine.shape == (4, 28, 28)
    assert reference.abs().max() > 1e-3, "reference map is ~zero, so the comparison would prove nothing"
    assert (mine - reference).abs().max().item() <= TOLERANCE


@pytest.mark.parametrize("layer", ["conv2", "conv3"])
@pytest.mark.parametrize("kind", ["predicted", "int", "tensor"])
def test_small_cnn_matches_captum(small_cnn, layer, kind):
    images = make_images()
    target, classes = resolve_test_target(kind, small_cnn, images)

    mine = GradCAM(small_cnn, layer).attribute(images, target)
    reference = captum_maps(small_cnn, layer, images, classes)

    assert reference.abs().max() > 1e-3, "reference map is ~zero, so the comparison would prove nothing"
    assert (mine - reference).abs().max().item() <= TOLERANCE


def test_captum_backend_matches_hand(resnet):
    images = make_images()
    hand = GradCAM(resnet, "layer3").compute(images, "predicted")
    captum = CaptumGradCAM(resnet, "layer3").compute(images, "predicted")

    assert torch.equal(hand.targets, captum.targets)
    assert (hand.maps - captum.maps).abs().max().item() <= TOLERANCE


def test_default_layer_is_model_default(resnet, small_cnn):
    assert GradCAM(resnet).layer == "layer4"
    assert GradCAM(small_cnn).layer == "conv3"
    assert GradCAM(resnet).compute(make_images()).maps.shape == (4, 4, 4)


def test_inplace_block_output_matches_reference(resnet):
    # layer4.1.bn2's output is changed in place by `x += shortcut` and the block's ReLU.
    # The reference takes the gradient through an added zero tensor instead of a hook.
    images, targets = make_images(), torch.tensor([0, 1, 2, 3])
    stored = {}

    def add_probe(module, inputs, output):
        stored["activation"] = output.detach().clone()
        stored["probe"] = torch.zeros_like(output, requires_grad=True)
        return output + stored["probe"]

    handle = resnet.get_submodule("layer4.1.bn2").register_forward_hook(add_probe)
    try:
        score = resnet(images).gather(1, targets[:, None]).sum()
    finally:
        handle.remove()
    (gradient,) = torch.autograd.grad(score, stored["probe"])
    expected = torch.relu((gradient.mean(dim=(2, 3), keepdim=True) * stored["activation"]).sum(dim=1))

    mine = GradCAM(resnet, "layer4.1.bn2").compute(images, targets).maps
    assert expected.abs().max() > 1e-2
    assert (mine - expected).abs().max().item() <= TOLERANCE


def test_batch_equals_single_images(resnet):
    images = make_images(3)
    batch = GradCAM(resnet, "layer3").attribute(images, "predicted")
    single = torch.cat([GradCAM(resnet, "layer3").attribute(images[i : i + 1], "predicted") for i in range(3)])
    assert (batch - single).abs().max().item() <= TOLERANCE


# --- a hand-weighted model ----------------------------------------------------------------


class HandWeighted(nn.Module):
    """A 1x1 conv giving A_0 = x and A_1 = 5 - x, global average, then a linear head.

    Class scores: y_0 = mean(A_0), y_1 = 0.5 mean(A_0) - mean(A_1), y_2 = -mean(A_0).
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.head = nn.Linear(2, 3)
        self.default_layer = "conv"
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.conv.bias.copy_(torch.tensor([0.0, 5.0]))
            self.head.weight.copy_(torch.tensor([[1.0, 0.0], [0.5, -1.0], [-1.0, 0.0]]))
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


HAND_IMAGE = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])


def test_hand_weighted_maps():
    # d y^c / d A_k[i, j] = W[c, k] / 4, so alpha = W[c] / 4 and L^c = ReLU(sum_k W[c, k] A_k / 4).
    model = HandWeighted()
    cam = GradCAM(model)

    class0 = cam.attribute(HAND_IMAGE, 0)[0]
    class1 = cam.attribute(HAND_IMAGE, 1)[0]

    assert torch.allclose(class0, torch.tensor([[0.25, 0.5], [0.75, 1.0]]), atol=1e-6)
    # 0.125 x - 0.25 (5 - x) = 0.375 x - 1.25 is positive only at x = 4.
    assert torch.allclose(class1, torch.tensor([[0.0, 0.0], [0.0, 0.25]]), atol=1e-6)
    assert cam.compute(HAND_IMAGE).targets.tolist() == [0]


def test_hand_weighted_upsampling():
    model = HandWeighted()
    image = HAND_IMAGE.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    raw = GradCAM(model).attribute(image, 0, upsample="none")
    nearest = upsample(raw, (8, 8), "nearest")

    # 16 positions now, so alpha_0 = 1/16 and L^0 = x / 16.
    assert raw.shape == (1, 4, 4)
    assert torch.allclose(raw, image[:, 0] / 16, atol=1e-7)
    assert nearest.shape == (1, 8, 8)
    assert nearest[0, 0, 0].item() == pytest.approx(1 / 16)
    assert nearest[0, 7, 7].item() == pytest.approx(4 / 16)


def test_zero_map_stays_zero():
    model = HandWeighted()
    maps = GradCAM(model).attribute(HAND_IMAGE, 2)  # ReLU(-x / 4) with x > 0
    shown = normalise_maps(maps)
    masks = region_masks(torch.full((1, 2, 2), 255, dtype=torch.uint8))
    shares = region_shares(maps, masks)

    assert torch.count_nonzero(maps) == 0
    assert torch.count_nonzero(shown) == 0
    assert not torch.isnan(shown).any()
    assert shares["zero_maps"] == 1
    assert shares["mass"]["edge"] is None


def test_normalise_maps_scales_each_map():
    maps = torch.tensor([[[0.0, 2.0], [1.0, 0.5]], [[0.0, 0.0], [0.0, 0.0]]])
    shown = normalise_maps(maps)
    assert shown[0].tolist() == [[0.0, 1.0], [0.5, 0.25]]
    assert shown[1].tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_create_graph_gradient_wrt_input():
    # L^0 = ReLU(x / 4) and alpha does not depend on x, so d sum(L^0) / dx = 1/4 everywhere.
    model = HandWeighted()
    image = HAND_IMAGE.clone().requires_grad_()
    maps = GradCAM(model).attribute(image, 0, create_graph=True)
    (gradient,) = torch.autograd.grad(maps.sum(), image)

    assert maps.requires_grad
    assert torch.allclose(gradient, torch.full_like(image, 0.25))


def test_create_graph_on_resnet_reaches_input_and_parameters():
    model = make_resnet()
    images = make_images(2).requires_grad_()
    maps = GradCAM(model, "layer3").attribute(images, "predicted", create_graph=True)
    input_gradient, weight_gradient = torch.autograd.grad(maps.sum(), [images, model.conv1.weight])

    assert input_gradient is not None and weight_gradient is not None
    assert torch.isfinite(input_gradient).all()
    assert input_gradient.abs().sum() > 0
    assert weight_gradient.abs().sum() > 0


@pytest.mark.parametrize("layer", ["layer4", "layer4.1.bn2"])
def test_create_graph_map_equals_plain_map(resnet, layer):
    images = make_images()
    plain = GradCAM(resnet, layer).attribute(images, "predicted")
    graph = GradCAM(resnet, layer).attribute(images.clone().requires_grad_(), "predicted", create_graph=True)

    assert plain.abs().max() > 1e-2
    assert (graph.detach() - plain).abs().max().item() <= TOLERANCE


def test_without_create_graph_map_is_detached(resnet):
    maps = GradCAM(resnet).attribute(make_images(2).requires_grad_(), "predicted")
    assert not maps.requires_grad


# --- state left unchanged -------------------------------------------------------------------


@pytest.mark.parametrize("create_graph", [False, True])
def test_parameters_buffers_and_input_unchanged(create_graph):
    model = make_resnet().train()  # in train mode BatchNorm would update its statistics
    before = {name: value.clone() for name, value in model.state_dict().items()}
    images = make_images()
    images_before = images.clone()

    GradCAM(model, "layer4.1.bn2").attribute(images, "predicted", create_graph=create_graph)

    after = model.state_dict()
    for name, value in before.items():
        assert torch.equal(after[name], value), name
    assert torch.equal(images, images_before)
    assert all(parameter.grad is None for parameter in model.parameters())


def test_train_mode_restored_per_module():
    model = make_resnet().train()
    model.layer1.eval()  # a caller's frozen block keeps its own mode
    GradCAM(model).attribute(make_images(2))

    assert model.training
    assert model.layer4.training
    assert not model.layer1.training
    assert not model.layer1[0].bn1.training


def test_eval_mode_used_inside():
    model = make_resnet().train()
    seen = []
    handle = model.layer4.register_forward_pre_hook(lambda module, inputs: seen.append(module.training))
    try:
        GradCAM(model).attribute(make_images(2))
    finally:
        handle.remove()
    assert seen == [False]
    assert model.training


@pytest.mark.parametrize("create_graph", [False, True])
def test_requires_grad_restored(create_graph):
    model = make_resnet()
    for parameter in model.layer1.parameters():
        parameter.requires_grad_(False)
    before = [parameter.requires_grad for parameter in model.parameters()]

    GradCAM(model, "layer3").attribute(make_images(2), create_graph=create_graph)

    assert [parameter.requires_grad for parameter in model.parameters()] == before
    assert not all(before)
    assert any(before)


def test_hooks_removed_after_success(resnet):
    count = hook_count(resnet)
    GradCAM(resnet, "layer4.1.bn2").attribute(make_images(2))
    CaptumGradCAM(resnet, "layer3").attribute(make_images(2))
    assert hook_count(resnet) == count == 0


def test_state_restored_after_exception_in_forward(monkeypatch):
    model = make_resnet().train()
    model.layer1.requires_grad_(False)
    flags = [parameter.requires_grad for parameter in model.parameters()]

    def broken(features):
        raise RuntimeError("head failed")

    monkeypatch.setattr(model.fc, "forward", broken)
    with pytest.raises(RuntimeError, match="head failed"):
        GradCAM(model, "layer4").attribute(make_images(2))

    assert hook_count(model) == 0
    assert model.training and model.layer4[1].bn2.training
    assert [parameter.requires_grad for parameter in model.parameters()] == flags


def test_state_restored_after_bad_target_class():
    model = make_resnet().train()
    with pytest.raises(UsageError, match="12"):
        GradCAM(model, "layer4").attribute(make_images(2), 12)  # only known after the forward pass
    assert hook_count(model) == 0
    assert model.training
    assert all(parameter.requires_grad for parameter in model.parameters())


# --- errors -----------------------------------------------------------------------------------


def test_unknown_layer_lists_valid_names(resnet):
    with pytest.raises(UsageError) as caught:
        GradCAM(resnet, "layer9")
    message = str(caught.value)
    assert "'layer9'" in message
    assert "layer4" in message
    assert "\n" not in message


def test_layer_that_runs_twice_is_rejected(small_cnn):
    with pytest.raises(UsageError, match=r"'pool' ran 2 times"):
        GradCAM(small_cnn, "pool").attribute(make_images(2))
    assert hook_count(small_cnn) == 0


def test_layer_without_feature_map_is_rejected(resnet):
    with pytest.raises(UsageError, match=r"'fc' outputs tensor of shape \(2, 10\)"):
        GradCAM(resnet, "fc").attribute(make_images(2))


@pytest.mark.parametrize(
    "target, pattern",
    [
        ("biggest", r"'biggest'"),
        (2.5, r"2\.5"),
        (True, r"True"),
        (torch.tensor([0, 1, 2]), r"shape \(3,\)"),
        (torch.tensor([0.0, 1.0]), r"torch\.float32"),
        (-1, r"class -1"),
        (torch.tensor([0, 10]), r"class 10"),
    ],
)
def test_bad_target_names_value(resnet, target, pattern):
    with pytest.raises(UsageError, match=pattern):
        GradCAM(resnet).attribute(make_images(2), target)


def test_true_target_needs_labels(resnet):
    with pytest.raises(UsageError, match="needs labels"):
        GradCAM(resnet).attribute(make_images(2), "true")
    labels = torch.tensor([4, 7])
    assert GradCAM(resnet).compute(make_images(2), "true", labels).targets.tolist() == [4, 7]


@pytest.mark.parametrize(
    "images, pattern",
    [
        (torch.rand(3, 28, 28), r"shape \(3, 28, 28\)"),
        (torch.zeros(1, 3, 28, 28, dtype=torch.uint8), r"torch\.uint8"),
        (torch.rand(0, 3, 28, 28), r"shape \(0, 3, 28, 28\)"),
        ([[0.0]], "list"),
    ],
)
def test_bad_images_name_shape(resnet, images, pattern):
    with pytest.raises(UsageError, match=pattern):
        GradCAM(resnet).attribute(images)


def test_bad_upsample_mode(resnet):
    with pytest.raises(UsageError, match="'bicubic'"):
        GradCAM(resnet).attribute(make_images(2), upsample="bicubic")


def test_captum_backend_rejects_create_graph(resnet):
    with pytest.raises(UsageError, match="create_graph"):
        CaptumGradCAM(resnet).attribute(make_images(2), create_graph=True)


# --- region shares and deletion test ----------------------------------------------------------


def square_image() -> torch.Tensor:
    image = torch.zeros(1, 8, 8, dtype=torch.uint8)
    image[0, 2:6, 2:6] = 255
    return image


def test_region_masks_on_square():
    # Sobel responds within one pixel of the square's outline; only the central 2x2 is flat.
    masks = region_masks(square_image(), edge_fraction=0.3)
    ring = torch.zeros(8, 8, dtype=torch.bool)
    ring[1:7, 1:7] = True
    ring[3:5, 3:5] = False

    assert torch.equal(masks["edge"][0], ring)
    assert masks["interior"][0].nonzero().tolist() == [[3, 3], [3, 4], [4, 3], [4, 4]]
    assert int(masks["background"].sum()) == 28
    total = masks["edge"].int() + masks["interior"].int() + masks["background"].int()
    assert torch.equal(total, torch.ones_like(total))


def test_region_masks_edge_fraction_drops_outer_corners():
    # The 4 pixels diagonal to the square's corners have Sobel magnitude sqrt(2),
    # below half the maximum 3 * sqrt(2).
    masks = region_masks(square_image(), edge_fraction=0.5)
    assert int(masks["edge"].sum()) == 28
    assert not masks["edge"][0, 1, 1]
    assert int(masks["background"].sum()) == 32


def test_region_masks_blank_image_is_background():
    masks = region_masks(torch.zeros(1, 5, 5, dtype=torch.uint8))
    assert bool(masks["background"].all())


def test_region_shares_against_area():
    masks = region_masks(square_image())
    uniform = region_shares(torch.ones(1, 8, 8), masks)
    interior_only = region_shares(masks["interior"].float() * 3.0, masks)

    assert uniform["area"] == pytest.approx({"edge": 32 / 64, "interior": 4 / 64, "background": 28 / 64})
    assert uniform["mass"] == pytest.approx(uniform["area"])
    assert uniform["lift"]["edge"] == pytest.approx(1.0)
    assert interior_only["mass"] == pytest.approx({"edge": 0.0, "interior": 1.0, "background": 0.0})
    assert interior_only["lift"]["interior"] == pytest.approx(16.0)


def test_region_shares_rejects_wrong_resolution():
    with pytest.raises(UsageError, match=r"\(1, 4, 4\)"):
        region_shares(torch.ones(1, 4, 4), region_masks(square_image()))


def test_deletion_test_top_pixels_matter_more():
    # For HandWeighted, class 0's score is mean(x) and its map is x / 4, so zeroing
    # the brightest pixels must cost more probability than zeroing random ones.
    model = HandWeighted()
    images = torch.rand(32, 1, 6, 6, generator=torch.Generator().manual_seed(0)) * 4
    targets = torch.zeros(32, dtype=torch.long)
    maps = GradCAM(model).attribute(images, targets)

    result = deletion_test(model, images, maps, targets, (0.25,), generator=torch.Generator().manual_seed(1))

    with torch.no_grad():
        kept = images.flatten(1).sort(dim=1).values[:, : 36 - 9]  # the 27 darkest pixels stay
        logits = model(torch.cat([kept, torch.zeros(32, 9)], dim=1).view(32, 1, 6, 6))
    expected_top = logits.softmax(dim=1)[:, 0].mean().item()
    assert result["top"][0] == pytest.approx(expected_top, abs=1e-6)
    assert result["drop_top"][0] > result["drop_random"][0] + 0.01
    assert result["drop_top"][0] == pytest.approx(result["base"] - result["top"][0], abs=1e-6)


def test_deletion_test_breaks_ties_at_random():
    model = HandWeighted()
    images = torch.rand(8, 1, 6, 6) + 1
    zero_maps = torch.zeros(8, 6, 6)
    first = deletion_test(model, images, zero_maps, torch.zeros(8, dtype=torch.long), (0.1,),
                          generator=torch.Generator().manual_seed(0))
    assert math.isfinite(first["drop_top"][0])
    with pytest.raises(UsageError, match=r"\[0\.0\]"):
        deletion_test(model, images, zero_maps, torch.zeros(8, dtype=torch.long), (0.0,))


# --- the probe ---------------------------------------------------------------------------------


def tiny_context(tmp_path, compare: bool = True) -> RunContext:
    tmp_path.mkdir(parents=True, exist_ok=True)
    plugins = registries()
    base = make_tiny_base(train=40, test=40)
    data = make_biased_data(base, plugins.biases.create("colour"))
    control_data = make_biased_data(base, plugins.biases.create("grayscale"), aligned_ratio=1.0, test_offset=0)
    lazy = TrainedModel(make_small_cnn(0), plugins.recipes.create("lazy"), 0, {}, None)
    control = TrainedModel(make_small_cnn(1), plugins.recipes.create("control"), 0, {}, None)
    loaded = []

    def load_model(spec):
        loaded.append(spec)
        return control, control_data

    context = RunContext(lazy, data, tmp_path, torch.device("cpu"), 0, False, load_model if compare else None)
    context.loaded = loaded
    return context


def check_group(values: dict) -> None:
    for kind in ("mass", "area"):
        shares = [values[kind][region] for region in ("edge", "interior", "background")]
        assert all(math.isfinite(share) and 0.0 <= share <= 1.0 for share in shares), (kind, shares)
        assert sum(shares) == pytest.approx(1.0, abs=1e-9), kind
    assert 0.0 <= values["accuracy"] <= 1.0
    assert len(values["deletion"]["drop_top"]) == 3


def test_probe_writes_grid_and_shares(tmp_path):
    context = tiny_context(tmp_path)
    results = registries().probes.create("gradcam", images=12).run(context)

    grid = tmp_path / "gradcam-grid.png"
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "summary.txt").read_text() == results["summary"] + "\n"
    assert context.loaded == ["control"]
    assert set(results["models"]) == {"studied", "compare"}
    assert results["models"]["compare"]["label"] == "control/quick"
    assert results["models"]["studied"]["layer"] == "conv3"
    assert results["models"]["studied"]["map_size"] == [7, 7]
    assert results["images"] == 12
    for role in ("studied", "compare"):
        for group in ("aligned", "conflicting"):
            check_group(results["models"][role][group])
    # The comparison model gets the same base images in gray, so both groups are identical for it.
    compare = results["models"]["compare"]
    assert compare["aligned"]["mass"] == compare["conflicting"]["mass"]
    assert "control/quick" in results["summary"]
    assert "lazy/quick" in results["summary"]


def test_probe_captum_matches_hand(tmp_path):
    probes = registries().probes
    hand = probes.create("gradcam", images=12, compare="").run(tiny_context(tmp_path / "a", False))
    captum = probes.create("gradcam-captum", images=12, compare="").run(tiny_context(tmp_path / "b", False))

    assert set(hand["models"]) == {"studied"}
    for group in ("aligned", "conflicting"):
        for region in ("edge", "interior", "background"):
            assert captum["models"]["studied"][group]["mass"][region] == pytest.approx(
                hand["models"]["studied"][group]["mass"][region], abs=1e-6
            )


@pytest.mark.parametrize(
    "params, pattern",
    [
        ({"target": "biggest"}, "'biggest'"),
        ({"images": "0"}, "0"),
        ({"deletion": "0.1,2"}, r"2\.0"),
        ({"stroke_threshold": "0"}, "stroke_threshold 0"),
    ],
)
def test_probe_rejects_bad_parameters(params, pattern):
    with pytest.raises(UsageError, match=pattern):
        registries().probes.create("gradcam", **params)


def test_probe_without_loader_rejects_compare(tmp_path):
    with pytest.raises(UsageError, match="'control'"):
        registries().probes.create("gradcam", images=4).run(tiny_context(tmp_path, compare=False))


def test_probes_registered():
    probes = registries().probes
    assert "gradcam" in probes
    assert "gradcam-captum" in probes
