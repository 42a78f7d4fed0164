"""``pr-test-vm test``: the one-shot CI verb (build -> start -> check -> report -> destroy).

The orchestration is ``stagingvm.ci.run.run_test``; this module turns options into a
``RunRequest``, names the VM (``--name``, or PR number + commit from the CI environment),
installs SIGINT/SIGTERM handling for the run (CI runners stop jobs with SIGTERM; it becomes
the same interrupt as Ctrl-C so the VM is still destroyed and the reports still written),
and prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from stagingvm.cli.buildopts import ImagePath, NixOptions, NixpkgsPath, RecipeName
from stagingvm.cli.policyopts import PolicyRef, load_chosen_policy
from stagingvm.cli.signals import interrupt_once
from stagingvm.cli.state import cli_state
from stagingvm.errors import InvalidInputError, NotFoundError
from stagingvm.names import validate_name


def test(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="[TARGET]", help="FLAKE#HOST or a configuration.nix to build and test."
        ),
    ] = None,
    policy: Annotated[
        str, typer.Option("--policy", metavar="FILE", help="Policy file, or builtin:NAME.")
    ] = "builtin:ai-worker",
    policy_ref: PolicyRef = None,
    image: ImagePath = None,
    recipe: RecipeName = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="VM name [default: from PR and commit]."),
    ] = None,
    pr: Annotated[
        str | None, typer.Option("--pr", metavar="N", help="PR number [default: from CI env].")
    ] = None,
    commit: Annotated[
        str | None,
        typer.Option("--commit", metavar="SHA", help="Commit [default: from CI env]."),
    ] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", metavar="FILE", help="Write a JUnit XML report.")
    ] = None,
    markdown: Annotated[
        Path | None,
        typer.Option("--markdown", metavar="FILE", help="Write a Markdown summary."),
    ] = None,
    report_json: Annotated[
        Path | None,
        typer.Option("--report-json", metavar="FILE", help="Write the report as JSON."),
    ] = None,
    keep_on_failure: Annotated[
        bool,
        typer.Option("--keep-on-failure", help="Keep the VM when a check or the run fails."),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="S", help="Global time-out of the whole run.", min=1),
    ] = 3600.0,
    nix_option: NixOptions = None,
    nixpkgs: NixpkgsPath = None,
    user: Annotated[
        list[str] | None,
        typer.Option(
            "--user", metavar="USER", help="More users whose key the guest takes from SMBIOS."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Build a configuration, boot it, check the policy, write reports, destroy the VM.

    The VM is destroyed whatever happens (failure, time-out, Ctrl-C, SIGTERM) unless
    --keep-on-failure is given and the run did not pass. Bad input (2, 3) is found before
    anything is built.

    Example:

    \b
      pr-test-vm test .#lazyworkhorse --policy policy.toml \\
          --junit report.xml --markdown summary.md
      pr-test-vm test --recipe design-b --policy builtin:ai-worker
      pr-test-vm test .#lazyworkhorse --policy-ref origin/main:ci/policy.toml
    """
    import secrets

    from stagingvm.ci.policy import CheckPolicy
    from stagingvm.ci.run import ReportPaths, RunRequest, run_test, vm_name_for
    from stagingvm.cli.ci_env import pr_and_commit  # tomllib, json: only when `test` runs
    from stagingvm.nixbuild.expr import GuestOptions, parse_nix_option

    state = cli_state(ctx)
    if sum(x is not None for x in (target, image, recipe)) != 1:
        raise InvalidInputError(
            "give exactly one of a TARGET to build, --image or --recipe",
            hint="example: pr-test-vm test .#lazyworkhorse --policy policy.toml",
        )
    from stagingvm.boundedread import check_output_path

    for path, what in (
        (junit, "--junit"),
        (markdown, "--markdown"),
        (report_json, "--report-json"),
    ):
        if path is not None:
            check_output_path(path, what)  # before anything is built: none is made later
    if image is not None and not image.is_file():
        raise NotFoundError(f"image file {image} does not exist")
    recipe_spec = None
    if recipe is not None:  # built inside the run (its time-out and reports cover the build)
        from stagingvm.images import get_recipe

        recipe_spec = get_recipe(recipe)  # an unknown recipe fails before anything is made
    # The policy loads before anything is built: a typo must not cost a 20-minute build.
    loaded = load_chosen_policy(state.out, policy, policy_ref)
    env_pr, env_commit = pr_and_commit(os.environ)
    vm_name = (
        validate_name(name)
        if name is not None
        else vm_name_for(pr or env_pr, commit or env_commit, secrets.token_hex(2))
    )
    # Several hosts: the one with the most free memory; the image is imported there.
    manager = state.placement(vm_name, None)
    runner = CheckPolicy(loaded, manager.settings, manager, progress=state.out.progress())
    state.out.info(f"policy: {loaded.source} (sha256 {loaded.sha256})")
    request = RunRequest(
        vm_name=vm_name,
        target=target,
        image=image,
        recipe=recipe_spec,
        reports=ReportPaths(junit=junit, markdown=markdown, json=report_json),
        keep_on_failure=keep_on_failure,
        timeout=timeout,
        nix_options=tuple(parse_nix_option(o) for o in nix_option or ()),
        nixpkgs=nixpkgs,
        guest=GuestOptions(users=tuple(dict.fromkeys([runner.user, *(user or ())]))),
        pr_ref=f"PR #{pr or env_pr}" if (pr or env_pr) else None,
    )
    state.out.info(f"test VM: {vm_name}")
    with interrupt_once():
        outcome = run_test(
            request, manager.settings, manager, runner, progress=state.out.progress()
        )
    for path in outcome.reports:
        state.out.info(f"report: {path}")
    for problem in outcome.report_errors:
        state.out.error(problem)  # the verdict's exit code stays
    if json_out:
        state.out.json(outcome.to_json())
    outcome.raise_for_verdict()
    state.out.info(f"passed: every restriction held on {vm_name} ({outcome.summary})")


def register(app: typer.Typer) -> None:
    app.command("test")(test)
