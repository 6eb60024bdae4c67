"""Probes shipped with biaskit."""

from biaskit.hookspecs import hookimpl


@hookimpl
def biaskit_register_probes(registry):
    pass
