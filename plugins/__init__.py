"""The methods shipped with biaskit, registered through the ``biaskit`` entry points like any third-party plugin."""
