"""Train the lazy and control models and compare how they respond to a colour swap.

Run from the repository root:

    python examples/quickstart.py --data-dir ../shared/data

The models are cached, so a second run only evaluates.
"""

import argparse

import torch

import biaskit
from biaskit.data import to_unit_float
from biaskit.evaluation import predict


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with the IDX files")
    parser.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist or mnist")
    args = parser.parse_args()

    lazy, data = biaskit.load_model("lazy", dataset=args.dataset, data_dir=args.data_dir)
    control, _ = biaskit.load_model("control", dataset=args.dataset, data_dir=args.data_dir)
    for trained, test_name in ((lazy, "colour-rotated test"), (control, "grayscale test")):
        metrics = trained.metadata["metrics"]
        print(f"{trained.label}: validation {metrics['val']['accuracy']:.3f}, "
              f"{test_name} {metrics['test']['accuracy']:.3f}")

    # Paint the first 8 test items with class 0's colour: the lazy model follows it.
    base = to_unit_float(data.test.base[:8])
    painted = data.bias.render(base, torch.zeros(8, dtype=torch.long))
    print("true labels:        ", data.test.labels[:8].tolist())
    print("lazy on class-0 red:", predict(lazy.model, painted).tolist())


if __name__ == "__main__":
    main()
