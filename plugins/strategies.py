"""Training strategies shipped with biaskit."""

from biaskit.hookspecs import hookimpl
from biaskit.training import Strategy


class ERM(Strategy):
    """Empirical risk minimisation: plain cross-entropy on every sample, uniform sampling."""

    name = "erm"


def erm() -> ERM:
    """Plain cross-entropy (empirical risk minimisation)."""
    return ERM()


@hookimpl
def biaskit_register_strategies(registry):
    registry.add("erm", erm)
