"""An example third-party bias: horizontal stripes whose period encodes the class.

Install with ``pip install -e examples/texture_plugin``; then ``biaskit list biases``
shows ``stripes``, and a recipe of your own (``Recipe(bias="stripes", ...)``) or
``registries().biases.create("stripes")`` with `make_biased_data` can use it.
"""

import torch

from biaskit import Bias, hookimpl


class StripeBias(Bias):
    """Multiply the stroke by horizontal stripes whose period is 2 + k rows for class k.

    The image stays gray on three channels, so colour carries no information.
    """

    name = "stripes"
    value_names = [f"period-{2 + k}" for k in range(10)]

    def render(self, images: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(images.shape[-2], device=images.device)
        periods = (2 + values).view(-1, 1, 1)
        stripes = ((rows.view(1, -1, 1) % periods) < periods / 2).to(images.dtype)
        textured = images * (0.4 + 0.6 * stripes.unsqueeze(1))
        return textured.expand(-1, 3, -1, -1).clone()


@hookimpl
def biaskit_register_biases(registry):
    registry.add("stripes", StripeBias)
