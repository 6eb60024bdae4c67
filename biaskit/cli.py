"""The `biaskit` command line. Command bodies parse options, call the library and print."""

from __future__ import annotations

import functools
import logging
import sys
import traceback
import warnings

import click

from .errors import BiaskitError, UsageError
from .plugins import KINDS, SINGULAR, registries

KIND_NAMES = sorted(set(KINDS) | set(SINGULAR.values()))


def _configure(verbose: bool, quiet: bool) -> None:
    level = logging.WARNING
    if verbose:
        level = logging.INFO
    elif quiet:
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    if not verbose:
        warnings.filterwarnings("default", category=RuntimeWarning)
        logging.captureWarnings(True)


def common_options(command):
    """Add --device, --verbose and --quiet to a command; they are defined once, here."""

    @click.option("--device", default="auto", show_default=True,
                  type=click.Choice(["auto", "cpu", "cuda"]),
                  help="Where to run: auto picks cuda when a GPU is present, else cpu.")
    @click.option("-v", "--verbose", is_flag=True, help="Log each step and show tracebacks on errors.")
    @click.option("-q", "--quiet", is_flag=True, help="Hide progress bars and informational output.")
    @click.pass_context
    @functools.wraps(command)
    def wrapper(ctx, device, verbose, quiet, **kwargs):
        _configure(verbose, quiet)
        ctx.obj = {"verbose": verbose}
        return command(device=device, progress=not quiet, **kwargs)

    return wrapper


def data_options(command):
    """Add the options that choose the model's data: preset, dataset, seed, data folder, download."""
    options = [
        click.option("--preset", default="quick", show_default=True,
                     help="Recipe preset: 'quick' for a CPU in minutes, 'paper' for the reference recipe."),
        click.option("--dataset", default=None,
                     help="Base dataset (see 'biaskit list datasets'); default: the recipe's own."),
        click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
                     help="Seed for the data split, cue assignment and training."),
        click.option("--data-dir", default=None, type=click.Path(file_okay=False),
                     help="Folder holding the IDX files; default: $BIASKIT_DATA_DIR, the cache, system folders."),
        click.option("--download", is_flag=True,
                     help="Allow a torchvision download when no local copy is found."),
        click.option("--out", default=None, type=click.Path(file_okay=False),
                     help="Parent folder of the run folder; default: $BIASKIT_RUNS_DIR or ./runs."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="biaskit")
def cli():
    """Plant a spurious cue, train a model that cheats on it, and probe and attack it."""


def _describe_parameters(entry) -> str:
    parts = []
    for name, parameter in entry.parameters().items():
        default = parameter.default
        parts.append(name if default is parameter.empty else f"{name}={default!r}")
    return ", ".join(parts) or "none"


@cli.command("list")
@click.argument("kind", required=False, type=click.Choice(KIND_NAMES))
@click.argument("pattern", required=False, default="*")
def list_command(kind, pattern):
    """List registered names of KIND (all kinds by default) matching the wildcard PATTERN.

    With a KIND, each entry's parameters and their defaults are listed too; pass them
    to 'biaskit run' as -p NAME=VALUE.
    """
    all_registries = registries()
    chosen = [all_registries.kind(kind)] if kind else list(all_registries.all().values())
    for registry in chosen:
        click.echo(f"{registry.kind}:")
        for name in registry.names(pattern):
            entry = registry.get(name)
            click.echo(f"  {name:<20} {entry.summary}")
            if kind:
                click.echo(f"  {'':<20} parameters: {_describe_parameters(entry)}")


@cli.command("plugins")
def plugins_command():
    """Show each plugin, what it registered, and plugins that failed to load."""
    all_registries = registries()
    for plugin, kinds in sorted(all_registries.contributions().items()):
        click.echo(f"{plugin}:")
        for kind, names in kinds.items():
            click.echo(f"  {kind}: {', '.join(names)}")
    for failure in all_registries.failures:
        click.echo(f"{failure.plugin}: FAILED at {failure.stage}: {failure.error}")


@cli.command("train")
@click.argument("recipe")
@click.option("--retrain", is_flag=True, help="Train again even when a cached checkpoint exists.")
@data_options
@common_options
def train_command(recipe, retrain, preset, dataset, seed, data_dir, download, out, device, progress):
    """Train RECIPE (see 'biaskit list recipes'), evaluate it and write a run folder."""
    from .workflows import train_command as train_workflow

    run_dir, summary = train_workflow(
        recipe, preset=preset, dataset=dataset, seed=seed, out=out, retrain=retrain,
        data_dir=data_dir, download=download, device=device, progress=progress,
    )
    click.echo(summary, nl=False)
    click.echo(f"run folder: {run_dir}")


def _parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE, for example -p layer=layer3", param_hint="-p")
        params[key.replace("-", "_")] = value
    return params


@cli.command("run")
@click.argument("kind", type=click.Choice(["probe", "attack", "probes", "attacks"]))
@click.argument("name")
@click.option("--model", "model_spec", default="lazy", show_default=True,
              help="Recipe name (trained on first use) or checkpoint path.")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Parameter of the probe or attack; repeatable (see 'biaskit list probes' or 'biaskit list attacks').")
@data_options
@common_options
def run_command(kind, name, model_spec, params, preset, dataset, seed, data_dir, download, out, device, progress):
    """Run probe or attack NAME on --model and write a run folder."""
    from .workflows import run_command as run_workflow

    run_dir, results = run_workflow(
        kind, name, model=model_spec, params=_parse_params(params), preset=preset,
        dataset=dataset, seed=seed, out=out, data_dir=data_dir, download=download,
        device=device, progress=progress,
    )
    summary = results.get("summary")
    if summary:
        click.echo(summary.rstrip("\n"))
    click.echo(f"run folder: {run_dir}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every error into one line and an exit status."""
    args = sys.argv[1:] if argv is None else argv
    verbose = any(arg in ("-v", "--verbose") for arg in args)
    try:
        cli.main(args=args, prog_name="biaskit", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        click.echo(f"error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except BiaskitError as error:
        if verbose:
            traceback.print_exc()
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted; finished checkpoints and run files are kept", err=True)
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":
    main()
