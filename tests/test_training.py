"""Tests for the trainer, the Strategy hooks and the evaluation metrics."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from biaskit.data import BiasedData, Split, make_biased_data
from biaskit.errors import UsageError
from biaskit.evaluation import (
    confusion_matrix,
    counterfactual_follow_rate,
    evaluate,
    predict,
    split_metrics,
    summary_line,
)
from biaskit.training import Batch, Strategy, TrainContext, TrainSettings, train
from biaskit_plugins.biases import ColourBias, GrayscaleBias
from biaskit_plugins.models import small_cnn
from conftest import make_tiny_base


pytestmark = pytest.mark.usefixtures("single_thread")


# Ten colours whose directions differ even after scaling by a gray level, so the
# colour of a stroke can be read back from its channel ratios.
DISTINCT_PALETTE = "1,0,0;0,1,0;0,0,1;1,1,0;0,1,1;1,0,1;1,0.5,0;0,0.5,1;0.5,0,1;1,1,1"


@pytest.fixture(scope="module")
def data() -> BiasedData:
    """160 train, 40 validation and 50 test images of 28x28 with stroke colours."""
    return make_biased_data(make_tiny_base(200, 50), ColourBias())


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return small_cnn(num_classes=10, in_chans=3, width=4)


def quick_settings(**changes) -> TrainSettings:
    values = dict(epochs=2, batch_size=32, lr=1e-2)
    values.update(changes)
    return TrainSettings(**values)


class Recorder(Strategy):
    """Plain cross-entropy that records every hook call and what it received."""

    name = "recorder"

    def __init__(self, order=None):
        self.order = order
        self.calls = []
        self.batches = []
        self.contexts = []
        self.training_flags = []

    def setup(self, context):
        self.calls.append(("setup",))
        self.contexts.append(context)

    def epoch_order(self, epoch, context):
        self.calls.append(("epoch_order", epoch))
        return self.order if self.order is not None else super().epoch_order(epoch, context)

    def augment(self, batch, context):
        self.calls.append(("augment",))
        return Batch(batch.images.flip(-1), batch.labels, batch.index)

    def loss(self, model, batch, context):
        self.calls.append(("loss",))
        self.batches.append(batch)
        self.training_flags.append(model.training)
        return F.cross_entropy(model(batch.images), batch.labels)

    def on_epoch_end(self, epoch, context):
        self.calls.append(("on_epoch_end", epoch))
        return {"marker": float(epoch)}


# Trainer


def test_train_deterministic(data):
    first, second = tiny_model(), tiny_model()
    history_first = train(first, data, Strategy(), quick_settings(), seed=1, progress=False)
    history_second = train(second, data, Strategy(), quick_settings(), seed=1, progress=False)
    assert history_first == history_second
    for key, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[key]), key


def test_train_seed_changes_result(data):
    first, second = tiny_model(), tiny_model()
    train(first, data, Strategy(), quick_settings(), seed=1, progress=False)
    train(second, data, Strategy(), quick_settings(), seed=2, progress=False)
    assert not torch.equal(first.head.weight, second.head.weight)


def test_train_changes_weights(data):
    model = tiny_model()
    before = model.head.weight.detach().clone()
    train(model, data, Strategy(), quick_settings(epochs=1, max_steps=1), progress=False)
    assert not torch.equal(model.head.weight, before)


def test_train_history(data):
    history = train(tiny_model(), data, Strategy(), quick_settings(), progress=False)
    assert [record["epoch"] for record in history] == [1, 2]
    # 160 samples in batches of 32: five steps per epoch.
    assert [record["steps"] for record in history] == [5, 10]
    assert all(record["loss"] > 0 for record in history)


def test_max_steps_within_epoch(data):
    strategy = Recorder()
    history = train(tiny_model(), data, strategy, quick_settings(epochs=5, max_steps=3), progress=False)
    assert strategy.calls.count(("loss",)) == 3
    assert len(history) == 1
    assert history[-1]["steps"] == 3


def test_max_steps_across_epochs(data):
    strategy = Recorder()
    history = train(tiny_model(), data, strategy, quick_settings(epochs=5, max_steps=7), progress=False)
    assert strategy.calls.count(("loss",)) == 7
    assert [record["steps"] for record in history] == [5, 7]


class LossLog(Strategy):
    def __init__(self):
        self.losses = []

    def loss(self, model, batch, context):
        value = super().loss(model, batch, context)
        self.losses.append((value.item(), len(batch.labels)))
        return value


def test_history_loss_weights_batches(data):
    strategy = LossLog()
    # 160 samples in batches of 48: sizes 48, 48, 48 and 16.
    history = train(tiny_model(), data, strategy, quick_settings(epochs=1, batch_size=48), progress=False)
    assert [size for _, size in strategy.losses] == [48, 48, 48, 16]
    expected = sum(value * size for value, size in strategy.losses) / 160
    assert history[0]["loss"] == pytest.approx(expected, rel=1e-12)


def test_history_loss_after_max_steps(data):
    strategy = LossLog()
    history = train(tiny_model(), data, strategy, quick_settings(epochs=1, max_steps=2), progress=False)
    expected = (strategy.losses[0][0] + strategy.losses[1][0]) / 2
    assert history[0]["loss"] == pytest.approx(expected, rel=1e-12)


def test_train_leaves_eval_mode(data):
    strategy = Recorder()
    model = tiny_model()
    train(model, data, strategy, quick_settings(epochs=1), progress=False)
    assert not model.training
    assert all(strategy.training_flags)


def test_hooks_order(data):
    strategy = Recorder()
    train(tiny_model(), data, strategy, quick_settings(epochs=2, batch_size=80), progress=False)
    epoch = [("epoch_order", 0), ("augment",), ("loss",), ("augment",), ("loss",), ("on_epoch_end", 0)]
    second = [("epoch_order", 1), ("augment",), ("loss",), ("augment",), ("loss",), ("on_epoch_end", 1)]
    assert strategy.calls == [("setup",)] + epoch + second


def test_epoch_end_values_logged(data):
    history = train(tiny_model(), data, Recorder(), quick_settings(), progress=False)
    assert [record["marker"] for record in history] == [0.0, 1.0]


def test_epoch_order_controls_batches(data):
    order = torch.tensor([3, 3, 7, 0, 159, 1])
    strategy = Recorder(order=order)
    train(tiny_model(), data, strategy, quick_settings(epochs=1, batch_size=4), progress=False)
    assert [batch.index.tolist() for batch in strategy.batches] == [[3, 3, 7, 0], [159, 1]]
    assert torch.equal(strategy.batches[1].labels, data.train.labels[torch.tensor([159, 1])])


def test_augment_output_reaches_loss(data):
    order = torch.arange(8)
    strategy = Recorder(order=order)
    train(tiny_model(), data, strategy, quick_settings(epochs=1, batch_size=8), progress=False)
    assert torch.equal(strategy.batches[0].images, data.train.images[:8].flip(-1))


def test_augment_input_not_modified(data):
    before = data.train.images.clone()
    train(tiny_model(), data, Recorder(), quick_settings(epochs=1), progress=False)
    assert torch.equal(data.train.images, before)


def test_strategy_sees_no_cue(data):
    strategy = Recorder()
    train(tiny_model(), data, strategy, quick_settings(epochs=1), progress=False)
    assert [field.name for field in dataclasses.fields(Batch)] == ["images", "labels", "index"]
    for batch in strategy.batches:
        assert set(vars(batch)) == {"images", "labels", "index"}
    context = strategy.contexts[0]
    assert isinstance(context, TrainContext)
    for value in vars(context).values():
        assert not isinstance(value, (BiasedData, Split))
    assert context.num_samples == 160
    assert context.num_classes == 10
    assert context.epochs == 1


@pytest.mark.parametrize(("changes", "message"), [
    ({"epochs": 0}, "epochs must be at least 1"),
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"lr": 0.0}, "lr must be positive"),
    ({"lr": -1e-3}, "lr must be positive"),
    ({"max_steps": 0}, "max_steps must be at least 1"),
])
def test_settings_invalid(changes, message):
    with pytest.raises(UsageError, match=message):
        quick_settings(**changes)


# Evaluation


def test_confusion_matrix_by_hand():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 2, 0, 2])
    matrix = confusion_matrix(labels, predictions, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_confusion_matrix_empty():
    matrix = confusion_matrix(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long), 2)
    assert matrix.tolist() == [[0, 0], [0, 0]]


def hand_split() -> Split:
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    cue_values = torch.tensor([0, 1, 2, 0, 3, 1])
    return Split(
        images=torch.zeros(6, 3, 2, 2),
        labels=labels,
        cue_values=cue_values,
        aligned=cue_values == labels,
        base=torch.zeros(6, 2, 2, dtype=torch.uint8),
    )


def test_split_metrics_by_hand():
    # aligned: samples 0, 1, 2, 5; conflicting: 3, 4.
    predictions = torch.tensor([0, 1, 0, 3, 3, 2])
    metrics = split_metrics(predictions, hand_split(), 4)
    assert metrics["accuracy"] == pytest.approx(3 / 6)
    assert metrics["aligned_accuracy"] == pytest.approx(2 / 4)
    assert metrics["conflicting_accuracy"] == pytest.approx(1 / 2)
    assert metrics["aligned_count"] == 4
    assert metrics["conflicting_count"] == 2
    assert metrics["confusion"][0] == [1, 0, 0, 1]


def test_split_metrics_empty_group():
    split = hand_split()
    split.aligned = torch.ones(6, dtype=torch.bool)
    metrics = split_metrics(split.labels.clone(), split, 4)
    assert metrics["aligned_accuracy"] == 1.0
    assert metrics["conflicting_accuracy"] is None
    assert metrics["conflicting_count"] == 0


class ColourReader(torch.nn.Module):
    """Predicts the palette entry whose direction matches the channel ratios of the brightest pixels."""

    def __init__(self, palette: torch.Tensor):
        super().__init__()
        self.register_buffer("directions", palette / palette.amax(dim=1, keepdim=True))

    def forward(self, images):
        peak = images.amax(dim=(2, 3))
        direction = peak / peak.amax(dim=1, keepdim=True).clamp_min(1e-6)
        return -torch.cdist(direction, self.directions)


class Constant(torch.nn.Module):
    def __init__(self, label: int, num_classes: int = 10):
        super().__init__()
        self.label, self.num_classes = label, num_classes

    def forward(self, images):
        logits = torch.zeros(len(images), self.num_classes)
        logits[:, self.label] = 1.0
        return logits


@pytest.fixture(scope="module")
def distinct_data() -> BiasedData:
    return make_biased_data(make_tiny_base(200, 50), ColourBias(DISTINCT_PALETTE))


def test_colour_reader_reads_cue(distinct_data):
    reader = ColourReader(distinct_data.bias.colours)
    assert torch.equal(predict(reader, distinct_data.train.images), distinct_data.train.cue_values)


def test_follow_rate_colour_model(distinct_data):
    result = counterfactual_follow_rate(ColourReader(distinct_data.bias.colours), distinct_data)
    assert result["follow_rate"] == 1.0
    assert result["per_cue"] == [1.0] * 10
    assert result["images"] == 50


def test_follow_rate_constant_model(distinct_data):
    result = counterfactual_follow_rate(Constant(3), distinct_data)
    # Each cue k counts the 45 test images whose label is not k (five per class); only
    # k = 3 is followed, so 45 hits out of 450 pairs.
    assert result["follow_rate"] == pytest.approx(0.1)
    assert result["per_cue"] == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_follow_rate_max_images(distinct_data):
    result = counterfactual_follow_rate(Constant(3), distinct_data, max_images=20)
    assert result["images"] == 20


def test_follow_rate_none_for_grayscale():
    gray = make_biased_data(make_tiny_base(40, 10), GrayscaleBias())
    assert counterfactual_follow_rate(Constant(0), gray) is None


def test_evaluate_colour_model(distinct_data):
    metrics = evaluate(ColourReader(distinct_data.bias.colours), distinct_data)
    val = metrics["val"]
    assert val["aligned_accuracy"] == 1.0
    assert val["conflicting_accuracy"] == 0.0
    assert val["accuracy"] == pytest.approx(val["aligned_count"] / 40)
    assert metrics["test"]["accuracy"] == 0.0
    assert metrics["test"]["aligned_accuracy"] is None
    assert metrics["counterfactual"]["follow_rate"] == 1.0


def test_evaluate_test_confusion_shifted(distinct_data):
    metrics = evaluate(ColourReader(distinct_data.bias.colours), distinct_data)
    confusion = torch.tensor(metrics["test"]["confusion"])
    for label in range(10):
        assert int(confusion[label, (label + 5) % 10]) == 5
    assert int(confusion.sum()) == 50


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_keeps_mode(data, training):
    model = tiny_model()
    model.train(training)
    evaluate(model, data, counterfactual_images=10)
    assert model.training is training


def test_predict_runs_in_eval_mode():
    seen = []

    class ModeSpy(torch.nn.Module):
        def forward(self, images):
            seen.append(self.training)
            return torch.zeros(len(images), 2)

    spy = ModeSpy().train()
    predict(spy, torch.zeros(5, 1, 2, 2), batch_size=2)
    assert seen == [False, False, False]
    assert spy.training


def test_predict_restores_mode_on_error():
    class Failing(torch.nn.Module):
        def forward(self, images):
            raise RuntimeError("forward failed")

    model = Failing().train()
    with pytest.raises(RuntimeError):
        predict(model, torch.zeros(2, 1, 2, 2))
    assert model.training


def test_predict_batches_agree(data):
    model = tiny_model().eval()
    whole = predict(model, data.val.images, batch_size=1000)
    pieces = predict(model, data.val.images, batch_size=7)
    assert torch.equal(whole, pieces)


def test_predict_empty():
    assert predict(Constant(0), torch.zeros(0, 3, 2, 2)).tolist() == []


def test_summary_line():
    def split(accuracy, conflicting=None):
        return {"accuracy": accuracy, "conflicting_accuracy": conflicting}

    metrics = {"train": split(0.9612), "val": split(0.95, 0.125), "test": split(0.1823),
               "counterfactual": {"follow_rate": 0.5}}
    assert summary_line(metrics) == (
        "train 96.12%, val 95.00%, test 18.23%, val conflicting 12.50%, follows cue 50.00%"
    )


def test_summary_line_missing_values():
    metrics = {"train": {"accuracy": None}, "val": {"accuracy": 1.0, "conflicting_accuracy": None},
               "test": {"accuracy": 0.0}, "counterfactual": None}
    assert summary_line(metrics) == "train n/a, val 100.00%, test 0.00%, val conflicting n/a"
