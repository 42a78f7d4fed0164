# The stagingvm Python package (CLI `pr-test-vm`). Its check phase runs the unit tests
# (tests/unit: libvirt's in-process test driver, no daemon, no VMs), so `nix flake check`
# and every build of the package run them.
{
  lib,
  python3Packages,
  qemu-utils,
  openssh,
  src ? lib.cleanSource ../.,
}:
let
  pyproject = builtins.fromTOML (builtins.readFile ../pyproject.toml);
in
python3Packages.buildPythonApplication {
  pname = "stagingvm";
  inherit (pyproject.project) version;
  inherit src;

  pyproject = true; # a PEP 517 build (older nixpkgs: format = "pyproject")
  build-system = [ python3Packages.hatchling ];

  propagatedBuildInputs = with python3Packages; [
    libvirt
    typer
    rich
    paramiko
  ];

  nativeCheckInputs = [
    python3Packages.pytestCheckHook
    qemu-utils
    openssh
  ];
  # pytestCheckHook's test selection (nixpkgs PR #386513, NixOS 25.05 and later);
  # pytestFlagsArray throws since nixpkgs PR #513772 (2026-04-26).
  enabledTestPaths = [ "tests/unit" ];
  pythonImportsCheck = [ "stagingvm" ];

  # qemu-img for image conversion. nix itself is deliberately not pinned: `build` uses the
  # host's nix (and its settings, substituters and store).
  makeWrapperArgs = [
    "--suffix"
    "PATH"
    ":"
    (lib.makeBinPath [ qemu-utils ])
  ];

  meta = {
    description = "Boot a PR's NixOS configuration in a throwaway libvirt VM and prove its restrictions hold";
    license = lib.licenses.mit;
    mainProgram = "pr-test-vm";
    platforms = lib.platforms.linux;
  };
}
